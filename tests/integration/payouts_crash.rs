//! Payouts survive `kill -9`: the payout worker and a backend are killed at random points of
//! their passes (the server restarts after each crash), and every order is still paid
//! exactly once. Runs on a cluster of its own, since every kill restarts the whole server.

use std::time::{Duration, Instant};

use sponsorship_integration_tests::*;

const ORG: &str = "00000000-0000-0000-0000-0000000000a1";
const EVENT: &str = "00000000-0000-0000-0000-0000000000e1";
const SPONSOR: &str = "00000000-0000-0000-0000-0000000000b1";
const ORDERS: i64 = 60;

fn fixture(c: &mut Client) {
    c.batch_execute(&format!(
        "SET client_min_messages = warning;
         CREATE EXTENSION sponsorship CASCADE;
         INSERT INTO sponsorship.organizations (id, name) VALUES ('{ORG}', 'Org');
         INSERT INTO sponsorship.payout_configurations (org_id, stripe_connect_account_id) VALUES ('{ORG}', 'acct_1Crash');
         INSERT INTO sponsorship.events (id, org_id, title, start_at) VALUES ('{EVENT}', '{ORG}', 'Fest', now());
         INSERT INTO sponsorship.sponsors (id, name) VALUES ('{SPONSOR}', 'Brand');
         INSERT INTO sponsorship.sponsorship_packages (id, event_id, title, price_cents, inventory)
         VALUES ('00000000-0000-0000-0000-0000000000c1', '{EVENT}', 'Gold', 100000, 1000);
         INSERT INTO sponsorship.sponsorship_orders (id, package_id, sponsor_id, event_id, amount_cents, status, stripe_charge_id)
         SELECT md5('order' || g)::uuid, '00000000-0000-0000-0000-0000000000c1', '{SPONSOR}', '{EVENT}', 100000 + g,
                'accepted', 'ch_crash' || g
           FROM generate_series(1, {ORDERS}) g;"
    ))
    .unwrap();
}

fn pid_of(c: &mut Client, backend_type: &str) -> Option<i32> {
    c.query_opt("SELECT pid FROM pg_stat_activity WHERE backend_type = $1 LIMIT 1", &[&backend_type])
        .ok()
        .flatten()
        .map(|r| r.get(0))
}

#[test]
fn every_order_is_paid_exactly_once_through_kill_9_at_random_points() {
    let fake = FakeStripe::start();
    fake.latency(40);
    let cluster = OwnCluster::start(
        "payoutcrash",
        &format!(
            "sponsorship.worker_database = 'crash'\nsponsorship.worker_count = 0\n\
             sponsorship.stripe_api_base = '{}'\n\
             sponsorship.payout_http_timeout_ms = 1000\nsponsorship.payout_lease_seconds = 2\n\
             sponsorship.payout_retry_base_seconds = 0\nsponsorship.payout_naptime_ms = 100\n\
             sponsorship.payout_batch_size = 12\nsponsorship.payout_concurrency = 3\n\
             sponsorship.payout_worker_enabled = off",
            fake.base_url()
        ),
    );
    let mut admin = cluster.connect("postgres");
    admin.batch_execute("CREATE DATABASE crash").unwrap();
    let mut c = cluster.connect("crash");
    fixture(&mut c);
    let queued = scalar_i64(
        &mut c,
        "SELECT count(sponsorship.queue_sponsorship_payout(id)) FROM sponsorship.sponsorship_orders",
    );
    assert_eq!(queued, ORDERS);

    // 1. a backend killed while its process_payout_queue() pass is sending
    let victim = cluster.connect("crash");
    let victim_pid: i32 = {
        let mut v = victim;
        let pid: i32 = v.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
        std::thread::spawn(move || {
            let _ = v.query_one("SELECT sponsorship.process_payout_queue(12)", &[]);
        });
        pid
    };
    std::thread::sleep(Duration::from_millis(150));
    cluster.kill_9_and_await_restart(victim_pid);
    drop(c);

    // 2. the payout worker, switched on, killed again and again mid-pass
    let mut c = cluster.connect_waiting("crash", 60);
    c.batch_execute("ALTER SYSTEM SET sponsorship.payout_worker_enabled = on").unwrap();
    c.batch_execute("SELECT pg_reload_conf()").unwrap();
    let mut kills = 1;
    let mut seed = 12345u64;
    while kills < 6 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        std::thread::sleep(Duration::from_millis(150 + (seed >> 33) % 400));
        let mut c = cluster.connect_waiting("crash", 60);
        if let Some(pid) = pid_of(&mut c, "sponsorship payout worker") {
            cluster.kill_9_and_await_restart(pid);
            kills += 1;
        }
    }

    // 3. left alone, everything is paid
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut c = cluster.connect_waiting("crash", 60);
    loop {
        let done = c
            .query_one("SELECT count(*) FROM sponsorship.sponsorship_payouts WHERE status = 'completed'", &[])
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(0);
        if done == ORDERS {
            break;
        }
        assert!(Instant::now() < deadline, "only {done} of {ORDERS} paid after the crashes\n{}", cluster.log());
        std::thread::sleep(Duration::from_millis(300));
        if c.is_closed() {
            c = cluster.connect_waiting("crash", 60);
        }
    }
    let transfers = fake.transfers();
    assert_eq!(transfers.len() as i64, ORDERS, "each order paid exactly once");
    let mut keys: Vec<String> = transfers.iter().map(|t| t["idempotency_key"].as_str().unwrap().to_string()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len() as i64, ORDERS);
    // every recorded transfer is the one Stripe made for that payout's key
    let mismatched = transfers
        .iter()
        .filter(|t| {
            let key = t["idempotency_key"].as_str().unwrap();
            let id = t["id"].as_str().unwrap();
            !scalar_bool(
                &mut c,
                &format!("SELECT EXISTS (SELECT 1 FROM sponsorship.sponsorship_payouts
                                          WHERE idempotency_key = '{key}' AND stripe_transfer_id = '{id}')"),
            )
        })
        .count();
    assert_eq!(mismatched, 0);
    assert_eq!(
        scalar_i64(&mut c, "SELECT count(*) FROM sponsorship.sponsorship_orders WHERE payout_status = 'paid'"),
        ORDERS
    );
    let (_, stats) = fake.http("GET", "/__control/stats", "", &[]);
    eprintln!(
        "{kills} kills; Stripe saw {} requests, {} replays of requests a killed process had sent",
        stats["requests"], stats["replays"]
    );
    assert!(cluster.log().contains("terminated by signal 9"), "the kills really crashed processes");

    // a key file others can read is refused, by name, without its content
    let key = cluster.dir.join("stripe_secret_key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let msg = expect_error(&mut c, "SELECT sponsorship.process_payout_queue(5)", "F0000");
    assert!(msg.contains("stripe_secret_key_file") && msg.contains("0644"), "{msg}");
    assert!(!msg.contains(TEST_STRIPE_KEY), "{msg}");
    // and after all those passes, restarts and reloads the key is nowhere in the server's log
    c.batch_execute("SELECT pg_reload_conf()").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let log = cluster.log();
    assert!(!log.contains(TEST_STRIPE_KEY) && !log.contains(&TEST_STRIPE_KEY[8..]), "the key reached the log");
}
