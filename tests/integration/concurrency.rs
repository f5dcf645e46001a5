//! Both queues under everything at once: two recalculation workers, the payout worker, pg_cron
//! jobs draining both queues, and direct calls from several sessions, while other sessions edit
//! profiles, events, audience insights and packages, queue payouts and read the marketplace.
//! Afterwards: every queue row was processed exactly once and none is left, every stored match
//! equals the per-pair score on the final data (no edit was lost), every payout was sent exactly
//! once, and nothing failed: no error in any session, no deadlock, no failed cron run, no ERROR
//! in the server log. Runs on a cluster of its own (workers and pg_cron on one database).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sponsorship_integration_tests::*;

pub(crate) const SPONSORS: i64 = 40;
pub(crate) const EVENTS: i64 = 30;
pub(crate) const ORDERS: i64 = 150;

/// The marketplace both this test and the crash test run on, with the test's note of who
/// processed each recalculation queue row.
pub(crate) fn marketplace(c: &mut Client) {
    c.batch_execute(include_str!("../../bench/soak_setup.sql")).unwrap();
}

fn fixture(c: &mut Client) {
    c.batch_execute("SET client_min_messages = warning; CREATE EXTENSION pg_cron")
        .unwrap();
    marketplace(c);
    // pg_cron drains both queues every minute beside the workers and the direct calls
    c.batch_execute(
        "SELECT cron.schedule('conc-recalc', '* * * * *', 'SELECT sponsorship.update_sponsorship_matches(25)');
         SELECT cron.schedule('conc-payouts', '* * * * *', 'SELECT sponsorship.process_payout_queue(15)');",
    )
    .unwrap();
}

/// A small deterministic generator, one per session.
pub(crate) struct Lcg(pub u64);
impl Lcg {
    pub(crate) fn below(&mut self, n: i64) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as i64
    }
}

/// What one kind of session does in a loop; every statement is its own transaction.
pub(crate) fn step(kind: usize, r: &mut Lcg, c: &mut Client) -> Result<(), postgres::Error> {
    let s = 1 + r.below(SPONSORS);
    let e = 1 + r.below(EVENTS);
    match kind {
        // edits of everything a score depends on
        0 | 1 => match r.below(5) {
            0 => c.batch_execute(&format!(
                "UPDATE sponsorship.sponsor_profiles SET annual_budget_cents = {} WHERE sponsor_id = md5('s{s}')::uuid",
                100_000 * (1 + r.below(500))
            )),
            1 => c.batch_execute(&format!(
                "UPDATE sponsorship.sponsor_profiles SET regions = ARRAY['{}'] WHERE sponsor_id = md5('s{s}')::uuid",
                ["Austin", "US", "global", "Berlin", "DE"][r.below(5) as usize]
            )),
            2 => c.batch_execute(&format!(
                "UPDATE sponsorship.events SET category = '{}' WHERE id = md5('e{e}')::uuid",
                ["music", "tech", "sports", "food"][r.below(4) as usize]
            )),
            3 => c.batch_execute(&format!(
                "UPDATE sponsorship.event_audience_insights SET age_segments = jsonb_build_object('25-34', {}, '35-44', 0.2)
                  WHERE event_id = md5('e{e}')::uuid",
                r.below(80) as f64 / 100.0
            )),
            _ => c.batch_execute(&format!(
                "UPDATE sponsorship.sponsorship_packages SET price_cents = {} WHERE id = md5('p{e}-2')::uuid",
                50_000 * (1 + r.below(100))
            )),
        },
        // direct drains of both queues, payouts queued (again and again: idempotent), and
        // bursts of pairs queued ahead of the edits (so passes of pairs alone, which write
        // side by side, run beside passes of whole events and sponsors)
        2 | 3 => match r.below(4) {
            0 => c.batch_execute("SELECT sponsorship.update_sponsorship_matches(10)"),
            1 => c.batch_execute("SELECT sponsorship.process_payout_queue(5)"),
            2 => c.batch_execute(&format!(
                "SELECT sponsorship.enqueue_recalc(md5('e' || (1 + (g * {} + {}) % {EVENTS}))::uuid,
                                                   md5('s' || (1 + (g * {} + {}) % {SPONSORS}))::uuid, 'pair', 2)
                   FROM generate_series(1, 8) g",
                1 + r.below(EVENTS - 1),
                r.below(EVENTS),
                1 + r.below(SPONSORS - 1),
                r.below(SPONSORS)
            )),
            _ => c.batch_execute(&format!(
                "SELECT sponsorship.queue_sponsorship_payout(md5('order{}')::uuid)",
                1 + r.below(ORDERS)
            )),
        },
        // marketplace reads
        _ => match r.below(3) {
            0 => c.query_one(
                &format!("SELECT count(*) FROM sponsorship.fn_compute_event_matches(md5('e{e}')::uuid)"),
                &[],
            )
            .map(|_| ()),
            1 => c.query_one(
                &format!(
                    "SELECT score FROM sponsorship.fn_compute_match_score(md5('e{e}')::uuid, md5('s{s}')::uuid)"
                ),
                &[],
            )
            .map(|_| ()),
            _ => c.query("SELECT * FROM sponsorship.v_event_marketplace LIMIT 20", &[]).map(|_| ()),
        },
    }
}

/// The outcome both tests prove, once every queue is drained: every recalculation queue row
/// was processed exactly once (at its first attempt when `first_attempt`) and none is left;
/// every stored match is the per-pair score of the final data; every order has one payout,
/// sent to Stripe exactly once and recorded. Returns (queue rows, matches, transfers).
pub(crate) fn assert_every_item_processed_once(
    c: &mut Client,
    fake: &FakeStripe,
    first_attempt: bool,
) -> (i64, i64, usize) {
    // the recalculation queue: every row processed exactly once, at the first attempt
    let rows = scalar_i64(c, "SELECT count(*) FROM sponsorship.fit_recalc_queue");
    assert_eq!(
        scalar_i64(c, "SELECT count(*) FROM public.recalc_done"),
        rows,
        "one processing per row"
    );
    assert_eq!(
        scalar_i64(c, "SELECT count(DISTINCT queue_id) FROM public.recalc_done"),
        rows
    );
    assert_eq!(
        scalar_i64(
            c,
            &format!(
                "SELECT count(*) FROM sponsorship.fit_recalc_queue
                  WHERE processed_at IS NULL OR last_error IS NOT NULL OR (attempts <> 1 AND {first_attempt})"
            )
        ),
        0
    );
    // no edit lost: every stored match is the per-pair score of the final data
    let matches = scalar_i64(c, "SELECT count(*) FROM sponsorship.sponsorship_matches");
    assert!(matches >= EVENTS, "{matches} matches");
    let stale = c
        .query(
            "SELECT m.event_id::text, m.sponsor_id::text, m.score::text, p.score::text
               FROM sponsorship.sponsorship_matches m,
                    LATERAL sponsorship.fn_compute_match_score(m.event_id, m.sponsor_id) p
              WHERE p.score <> m.score",
            &[],
        )
        .unwrap();
    assert!(
        stale.is_empty(),
        "{} stale matches, e.g. {:?}",
        stale.len(),
        stale
            .iter()
            .take(3)
            .map(|r| (
                r.get::<_, String>(0),
                r.get::<_, String>(2),
                r.get::<_, String>(3)
            ))
            .collect::<Vec<_>>()
    );
    // every event's stored best sponsor is its best sponsor now
    assert_eq!(
        scalar_i64(
            c,
            "SELECT count(*) FROM sponsorship.events e
              WHERE (SELECT max(score) FROM sponsorship.sponsorship_matches m WHERE m.event_id = e.id)
                    IS DISTINCT FROM (SELECT max(score) FROM sponsorship.fn_compute_event_matches(e.id))"
        ),
        0,
        "an event's best match is stored"
    );

    // payouts: one per order, each sent exactly once, each transfer recorded
    let payouts = scalar_i64(c, "SELECT count(*) FROM sponsorship.sponsorship_payouts");
    assert_eq!(payouts, ORDERS);
    let transfers = fake.transfers();
    assert_eq!(transfers.len() as i64, ORDERS, "one transfer per payout");
    let mut keys: Vec<&str> = transfers
        .iter()
        .map(|t| t["idempotency_key"].as_str().unwrap())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len() as i64,
        ORDERS,
        "no idempotency key sent for two transfers"
    );
    let recorded = transfers
        .iter()
        .filter(|t| {
            scalar_bool(
                c,
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM sponsorship.sponsorship_payouts WHERE idempotency_key = '{}'
                                       AND stripe_transfer_id = '{}' AND status = 'completed')",
                    t["idempotency_key"].as_str().unwrap(),
                    t["id"].as_str().unwrap()
                ),
            )
        })
        .count();
    assert_eq!(recorded as i64, ORDERS);
    assert_eq!(
        scalar_i64(
            c,
            "SELECT count(*) FROM sponsorship.sponsorship_orders WHERE payout_status = 'paid'"
        ),
        ORDERS
    );

    (rows, matches, transfers.len())
}

fn cron_runs(c: &mut Client, status: &str) -> i64 {
    scalar_i64(
        c,
        &format!(
            "SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
              WHERE j.jobname LIKE 'conc-%' AND d.status = '{status}'"
        ),
    )
}

#[test]
fn workers_cron_and_direct_calls_together_process_every_item_exactly_once() {
    let fake = FakeStripe::start();
    fake.latency(15);
    let cluster = OwnCluster::start(
        "concurrency",
        &format!(
            "shared_preload_libraries = 'sponsorship, pg_cron'\ncron.database_name = 'conc'\n\
             cron.use_background_workers = on\n\
             sponsorship.worker_database = 'conc'\nsponsorship.worker_count = 2\nsponsorship.worker_naptime_ms = 50\n\
             sponsorship.worker_batch_size = 5\n\
             sponsorship.stripe_api_base = '{}'\nsponsorship.payout_http_timeout_ms = 2000\n\
             sponsorship.payout_retry_base_seconds = 0\nsponsorship.payout_naptime_ms = 100\n\
             sponsorship.payout_batch_size = 5\nsponsorship.payout_concurrency = 2\n\
             log_lock_waits = on\ndeadlock_timeout = 200ms",
            fake.base_url()
        ),
    );
    let mut admin = cluster.connect("postgres");
    admin.batch_execute("CREATE DATABASE conc").unwrap();
    let mut c = cluster.connect("conc");
    fixture(&mut c);
    // (the workers looked for the database before it existed: the log is checked from here)
    let log_start = cluster.log().len();
    // both recalculation workers and the payout worker are at work in this database
    let deadline = Instant::now() + Duration::from_secs(30);
    while scalar_i64(&mut c, "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'sponsorship%worker' AND datname = 'conc'") < 3 {
        assert!(Instant::now() < deadline, "the workers did not start\n{}", cluster.log());
        std::thread::sleep(Duration::from_millis(100));
    }

    // Sessions: two editors, two drainers, one reader. They stop once pg_cron has run both
    // jobs while they were busy (at a minute boundary) and at least 20 s have passed.
    let stop = Arc::new(AtomicBool::new(false));
    let steps = Arc::new(AtomicU64::new(0));
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let sessions: Vec<_> = (0..5)
        .map(|kind| {
            let (stop, steps, errors) = (stop.clone(), steps.clone(), errors.clone());
            let mut client = cluster.connect("conc");
            std::thread::spawn(move || {
                let mut r = Lcg(kind as u64 * 7919 + 1);
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = step(kind, &mut r, &mut client) {
                        errors
                            .lock()
                            .unwrap()
                            .push(format!("session {kind}: {e:?}"));
                    }
                    steps.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    let cron_before = scalar_i64(&mut c, "SELECT count(*) FROM cron.job_run_details");
    c.batch_execute("CREATE TEMP TABLE busy_since AS SELECT now() AS t")
        .unwrap();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let cron_now = scalar_i64(
            &mut c,
            "SELECT count(DISTINCT jobid) FROM cron.job_run_details
              WHERE status = 'succeeded' AND start_time > (SELECT t FROM busy_since)",
        );
        if cron_now >= 2 && started.elapsed() > Duration::from_secs(20) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "pg_cron never ran both jobs\n{}",
            cluster.log()
        );
    }
    stop.store(true, Ordering::Relaxed);
    for s in sessions {
        s.join().unwrap();
    }
    let busy = started.elapsed();
    let steps = steps.load(Ordering::Relaxed);

    // Everything queued is drained by the workers (the cron jobs keep running too).
    for o in 1..=ORDERS {
        c.batch_execute(&format!(
            "SELECT sponsorship.queue_sponsorship_payout(md5('order{o}')::uuid)"
        ))
        .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let pending = scalar_i64(
            &mut c,
            "SELECT (SELECT count(*) FROM sponsorship.fit_recalc_queue WHERE processed_at IS NULL)
                  + (SELECT count(*) FROM sponsorship.sponsorship_payouts WHERE status <> 'completed')",
        );
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} items still pending\n{}",
            cluster.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // a cron run started at this minute's boundary may still be finishing
    std::thread::sleep(Duration::from_millis(500));

    let errors = errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{} errors, first: {:#?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );

    let (rows, matches, transfers) = assert_every_item_processed_once(&mut c, &fake, true);
    let pair_rows = scalar_i64(
        &mut c,
        "SELECT count(*) FROM sponsorship.fit_recalc_queue WHERE event_id IS NOT NULL AND sponsor_id IS NOT NULL",
    );
    assert!(pair_rows >= 50, "only {pair_rows} pair rows were queued");

    // pg_cron ran the drains and no run failed; nothing in the server log went wrong
    assert!(cron_runs(&mut c, "succeeded") >= 2);
    assert_eq!(cron_runs(&mut c, "failed"), 0);
    let log = cluster.log()[log_start..].to_string();
    assert!(!log.contains("deadlock detected"), "a deadlock:\n{log}");
    let error_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR:") || l.contains("FATAL:"))
        .collect();
    assert!(
        error_lines.is_empty(),
        "errors in the server log:\n{}",
        error_lines.join("\n")
    );

    let by_whom: Vec<(String, i64)> = c
        .query(
            "SELECT by_whom, count(*) FROM public.recalc_done GROUP BY 1 ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let (_, stats) = fake.http("GET", "/__control/stats", "", &[]);
    eprintln!(
        "{steps} session steps in {:.1} s; {rows} recalc rows ({pair_rows} of pairs) processed once each, by {by_whom:?}; \
         {matches} matches, none stale; {ORDERS} payouts, {} transfers, {} Stripe requests; \
         {} cron runs since the start",
        busy.as_secs_f64(),
        transfers,
        stats["requests"],
        scalar_i64(&mut c, "SELECT count(*) FROM cron.job_run_details") - cron_before
    );
}
