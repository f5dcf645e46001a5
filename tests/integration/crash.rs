//! Both queues through crashes: while sessions edit the marketplace, queue payouts and drain
//! the queues, a recalculation worker, the payout worker and a backend mid-pass are killed
//! with `kill -9` (each crash restarts the whole server), and the server is twice stopped with
//! `pg_ctl restart -m immediate` (no checkpoint: recovery from the WAL). Afterwards the workers
//! are back by themselves, the queues drain, every queue row was processed exactly once, no
//! stored match is stale, and every payout was sent exactly once. A cluster of its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sponsorship_integration_tests::*;

use crate::concurrency::{assert_every_item_processed_once, marketplace, step, Lcg, ORDERS};

fn pid_of(c: &mut Client, backend_type: &str) -> Option<i32> {
    c.query_opt(
        "SELECT pid FROM pg_stat_activity WHERE backend_type LIKE $1 ORDER BY random() LIMIT 1",
        &[&backend_type],
    )
    .ok()
    .flatten()
    .map(|r| r.get(0))
}

fn workers(c: &mut Client) -> i64 {
    c.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('sponsorship recalc worker', 'sponsorship payout worker')",
        &[],
    )
    .map(|r| r.get(0))
    .unwrap_or(0)
}

#[test]
fn the_queues_resume_after_kill_9_and_immediate_restarts_with_nothing_lost_or_sent_twice() {
    let fake = FakeStripe::start();
    fake.latency(25);
    let cluster = OwnCluster::start(
        "crash",
        &format!(
            "sponsorship.worker_database = 'crashq'\nsponsorship.worker_count = 2\nsponsorship.worker_naptime_ms = 50\n\
             sponsorship.worker_batch_size = 5\n\
             sponsorship.stripe_api_base = '{}'\nsponsorship.payout_http_timeout_ms = 1000\n\
             sponsorship.payout_lease_seconds = 2\nsponsorship.payout_retry_base_seconds = 0\n\
             sponsorship.payout_naptime_ms = 100\nsponsorship.payout_batch_size = 5\nsponsorship.payout_concurrency = 2",
            fake.base_url()
        ),
    );
    let mut admin = cluster.connect("postgres");
    admin.batch_execute("CREATE DATABASE crashq").unwrap();
    drop(admin);
    let mut c = cluster.connect("crashq");
    marketplace(&mut c);
    drop(c);

    // Sessions edit, queue payouts, drain and read; a session whose server went away
    // reconnects (what it was doing was rolled back, or committed: both are fine).
    let stop = Arc::new(AtomicBool::new(false));
    let steps = Arc::new(AtomicU64::new(0));
    let sessions: Vec<_> = (0..4)
        .map(|kind| {
            let (stop, steps) = (stop.clone(), steps.clone());
            let conn = cluster.conn_string("crashq");
            std::thread::spawn(move || {
                let mut r = Lcg(kind as u64 * 104729 + 3);
                let mut client: Option<Client> = None;
                while !stop.load(Ordering::Relaxed) {
                    let c = match client.as_mut() {
                        Some(c) if !c.is_closed() => c,
                        _ => {
                            client = Client::connect(&conn, NoTls).ok();
                            if client.is_none() {
                                std::thread::sleep(Duration::from_millis(100));
                            }
                            continue;
                        }
                    };
                    let _ = step(kind, &mut r, c);
                    steps.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    // The crashes, each once its victim is at work.
    let mut seed = Lcg(2026);
    let mut crashes = Vec::new();
    for round in 0..8 {
        std::thread::sleep(Duration::from_millis(400 + seed.below(600) as u64));
        let mut c = cluster.connect_waiting("crashq", 60);
        let deadline = Instant::now() + Duration::from_secs(60);
        while workers(&mut c) < 3 {
            assert!(
                Instant::now() < deadline,
                "the workers did not come back\n{}",
                cluster.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        match round % 4 {
            0 => {
                let pid = pid_of(&mut c, "sponsorship recalc worker").unwrap();
                cluster.kill_9_and_await_restart(pid);
                crashes.push("kill -9 recalc worker");
            }
            1 => {
                // a backend in the middle of its own drain of the recalculation queue
                let mut victim = cluster.connect("crashq");
                let pid: i32 = victim
                    .query_one("SELECT pg_backend_pid()", &[])
                    .unwrap()
                    .get(0);
                std::thread::spawn(move || {
                    let _ = victim.batch_execute(
                        "BEGIN; SELECT sponsorship.update_sponsorship_matches(50); SELECT pg_sleep(5); COMMIT",
                    );
                });
                std::thread::sleep(Duration::from_millis(150));
                cluster.kill_9_and_await_restart(pid);
                crashes.push("kill -9 backend mid-drain");
            }
            2 => {
                let pid = pid_of(&mut c, "sponsorship payout worker").unwrap();
                cluster.kill_9_and_await_restart(pid);
                crashes.push("kill -9 payout worker");
            }
            _ => {
                drop(c);
                cluster.restart_immediate();
                crashes.push("pg_ctl restart -m immediate");
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for s in sessions {
        s.join().unwrap();
    }

    // Left alone (the workers back by themselves), everything drains.
    let mut c = cluster.connect_waiting("crashq", 60);
    let deadline = Instant::now() + Duration::from_secs(60);
    while workers(&mut c) < 3 {
        assert!(
            Instant::now() < deadline,
            "the workers did not come back\n{}",
            cluster.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for o in 1..=ORDERS {
        c.batch_execute(&format!(
            "SELECT sponsorship.queue_sponsorship_payout(md5('order{o}')::uuid)"
        ))
        .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(120);
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

    let (rows, matches, transfers) = assert_every_item_processed_once(&mut c, &fake, true);
    let log = cluster.log();
    assert!(
        log.contains("terminated by signal 9"),
        "the kills crashed processes"
    );
    assert_eq!(
        log.matches("received immediate shutdown request").count(),
        2,
        "two immediate restarts"
    );
    let (_, stats) = fake.http("GET", "/__control/stats", "", &[]);
    eprintln!(
        "{} crashes ({crashes:?}); {} session steps; {rows} recalc rows processed once each; {matches} matches, none stale; \
         {ORDERS} payouts, {transfers} transfers; Stripe saw {} requests, {} replays of requests a killed process had sent",
        crashes.len(),
        steps.load(Ordering::Relaxed),
        stats["requests"],
        stats["replays"]
    );
}
