//! Money (SPEC §5): the fee in SQL, queueing payouts, and sending them to a scripted fake
//! Stripe server exactly once, through every failure it can produce.

use serde_json::json;
use sponsorship_integration_tests::*;

const ORG: &str = "00000000-0000-0000-0000-0000000000a1";
const ORG2: &str = "00000000-0000-0000-0000-0000000000a2";
const EVENT: &str = "00000000-0000-0000-0000-0000000000e1";
const SPONSOR: &str = "00000000-0000-0000-0000-0000000000b1";
const ACCT: &str = "acct_1TestOrganizer";

/// Two organizations (one with a 7.5% rate, a floor and a cap; one on the platform default),
/// an event, a sponsor and a package.
fn money_fixture(c: &mut Client) {
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.organizations (id, name) VALUES ('{ORG}', 'Rate org'), ('{ORG2}', 'Default org');
         INSERT INTO sponsorship.payout_configurations (org_id, stripe_connect_account_id, platform_fee_bps,
                                                        min_fee_cents, max_fee_cents, minimum_payout_cents)
         VALUES ('{ORG}', '{ACCT}', 750, 100, 50000, 1000);
         INSERT INTO sponsorship.events (id, org_id, title, start_at) VALUES ('{EVENT}', '{ORG}', 'Fest', now() + interval '30 days');
         INSERT INTO sponsorship.sponsors (id, name) VALUES ('{SPONSOR}', 'Brand');
         INSERT INTO sponsorship.sponsorship_packages (id, event_id, title, price_cents, currency, inventory)
         VALUES ('00000000-0000-0000-0000-0000000000c1', '{EVENT}', 'Gold', 100000, 'USD', 1000);"
    ))
    .unwrap();
}

/// A paid order of `amount` minor units; returns its id.
fn paid_order(c: &mut Client, n: u32, amount: i64, currency: &str, status: &str, milestone: Option<&str>) -> String {
    let id = format!("00000000-0000-0000-0000-{:012}", 0xd00000 + n as u64);
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.sponsorship_orders (id, package_id, sponsor_id, event_id, amount_cents, currency, status,
                                                     stripe_charge_id, milestone)
         VALUES ('{id}', '00000000-0000-0000-0000-0000000000c1', '{SPONSOR}', '{EVENT}', {amount}, '{currency}', '{status}',
                 'ch_test{n}', {})",
        milestone.map(|m| format!("'{m}'")).unwrap_or_else(|| "NULL".into())
    ))
    .unwrap();
    id
}

fn fee(c: &mut Client, sql_args: &str) -> i64 {
    scalar_i64(c, &format!("SELECT sponsorship.calculate_platform_fee({sql_args})"))
}

#[test]
fn the_fee_follows_the_organizations_rate_floor_and_cap_or_the_platform_default() {
    let mut db = TestDb::with_extension("fee");
    let c = &mut db.client;
    money_fixture(c);
    // 7.5%, rounded half up, within [100, 50000]
    assert_eq!(fee(c, &format!("100000, '{ORG}'")), 7_500);
    assert_eq!(fee(c, &format!("1010, '{ORG}'")), 100, "76 raised to the floor");
    assert_eq!(fee(c, &format!("10000000, '{ORG}'")), 50_000, "750,000 lowered to the cap");
    assert_eq!(fee(c, &format!("50, '{ORG}'")), 50, "never above the amount");
    assert_eq!(fee(c, &format!("0, '{ORG}'")), 0);
    assert_eq!(fee(c, &format!("10006, '{ORG}'")), 750, "750.45 rounds down");
    assert_eq!(fee(c, &format!("10007, '{ORG}'")), 751, "750.525 rounds up");
    // currencies: zero- and three-decimal
    assert_eq!(fee(c, &format!("100000, '{ORG}', 'JPY'")), 7_500);
    assert_eq!(fee(c, &format!("1234560, '{ORG}', 'KWD'")), 50_000, "capped");
    assert_eq!(fee(c, &format!("123450, '{ORG}', 'BHD'")), 9_260, "9,258.75 to a multiple of ten");
    // no configuration: the platform default (5%), which a superuser may change
    assert_eq!(fee(c, &format!("100000, '{ORG2}'")), 5_000);
    c.batch_execute("SET sponsorship.platform_fee_bps = 1200").unwrap();
    assert_eq!(fee(c, &format!("100000, '{ORG2}'")), 12_000);
    assert_eq!(fee(c, &format!("100000, '{ORG}'")), 7_500, "an organization's own rate wins");
    c.batch_execute("RESET sponsorship.platform_fee_bps").unwrap();
    // a rate set to NULL falls back to the default, the floor and cap still apply
    c.batch_execute(&format!("UPDATE sponsorship.payout_configurations SET platform_fee_bps = NULL WHERE org_id = '{ORG}'"))
        .unwrap();
    assert_eq!(fee(c, &format!("100000, '{ORG}'")), 5_000);
    assert_eq!(fee(c, &format!("1000, '{ORG}'")), 100);
    // over a whole table, each row with its own organization (the per-statement cache)
    assert_eq!(
        scalar_i64(c, &format!("SELECT sum(sponsorship.calculate_platform_fee(a, o))::int8
                                  FROM (VALUES (100000, '{ORG}'::uuid), (100000, '{ORG2}'), (1000, '{ORG}')) v(a, o)")),
        5_000 + 5_000 + 100
    );
    // a change is seen by the next statement, in the same transaction too
    c.batch_execute(&format!(
        "BEGIN; UPDATE sponsorship.payout_configurations SET platform_fee_bps = 100 WHERE org_id = '{ORG}'"
    ))
    .unwrap();
    assert_eq!(fee(c, &format!("100000, '{ORG}'")), 1_000);
    c.batch_execute("ROLLBACK").unwrap();
    assert_eq!(fee(c, &format!("100000, '{ORG}'")), 5_000);
}

#[test]
fn bad_fee_input_is_an_error_with_a_sqlstate() {
    let mut db = TestDb::with_extension("feebad");
    let c = &mut db.client;
    money_fixture(c);
    expect_error(c, &format!("SELECT sponsorship.calculate_platform_fee(NULL, '{ORG}')"), "22004");
    expect_error(c, "SELECT sponsorship.calculate_platform_fee(100, NULL)", "22004");
    expect_error(c, &format!("SELECT sponsorship.calculate_platform_fee(-1, '{ORG}')"), "22023");
    expect_error(c, &format!("SELECT sponsorship.calculate_platform_fee(100, '{ORG}', 'XYZ')"), "22023");
    expect_error(c, &format!("SELECT sponsorship.calculate_platform_fee(100, '{ORG}', 'usd')"), "22023");
    expect_error(c, &format!("SELECT sponsorship.calculate_platform_fee(100, '{ORG}', NULL)"), "22004");
    expect_error(c, "SELECT sponsorship.calculate_platform_fee(100, gen_random_uuid())", "P0002");
    expect_error(c, &format!("SELECT sponsorship.calculate_platform_fee('9223372036854775808'::bigint, '{ORG}')"), "22003");
    // an API user gets the organization's real rate although RLS hides its settings
    c.batch_execute("SET ROLE authenticated").unwrap();
    assert_eq!(fee(c, &format!("100000, '{ORG}'")), 7_500);
    c.batch_execute("RESET ROLE; SET ROLE anon").unwrap();
    expect_error(c, &format!("SELECT sponsorship.calculate_platform_fee(100000, '{ORG}')"), "42501");
    c.batch_execute("RESET ROLE").unwrap();
}

#[test]
fn a_callers_search_path_cannot_hijack_the_fee_query_run_with_the_owners_rights() {
    let mut db = TestDb::with_extension("feepath");
    money_fixture(&mut db.client);
    db.client
        .batch_execute(&format!("GRANT CREATE ON DATABASE {} TO authenticated", db.name))
        .unwrap();
    // a fresh backend: nothing about the fee is cached yet
    let c = &mut db.connect();
    c.batch_execute(
        "SET ROLE authenticated;
         CREATE SCHEMA evil;
         CREATE FUNCTION evil.uuid_eq(uuid, uuid) RETURNS boolean LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'hijacked: running as %', current_user; END $$;
         CREATE OPERATOR evil.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = evil.uuid_eq);
         SET search_path = evil, pg_catalog, public",
    )
    .unwrap();
    // the operator does capture unqualified uuid comparisons under this search_path ...
    let msg = expect_error(c, "SELECT gen_random_uuid() = gen_random_uuid()", "P0001");
    assert!(msg.contains("hijacked"), "{msg}");
    // ... but not the fee's own query, which still reads the real settings
    assert_eq!(fee(c, &format!("100000, '{ORG}'")), 7_500);
    assert_eq!(fee(c, &format!("100000, '{ORG}', 'KWD'")), 7_500);
    c.batch_execute("RESET ROLE").unwrap();
}

fn payout_of(c: &mut Client, order: &str) -> String {
    scalar_string(c, &format!("SELECT sponsorship.queue_sponsorship_payout('{order}')::text"))
}

#[test]
fn a_payout_is_queued_only_for_a_paid_order_of_a_connected_org_once() {
    let mut db = TestDb::with_extension("queuepay");
    let c = &mut db.client;
    money_fixture(c);
    let order = paid_order(c, 1, 100_000, "USD", "accepted", None);
    let first = payout_of(c, &order);
    assert_eq!(payout_of(c, &order), first, "queued before: the same payout");
    let r = c
        .query_one(&format!("SELECT gross_cents, fee_cents, amount_cents, currency, status, destination_account, stage,
                                    idempotency_key
                               FROM sponsorship.sponsorship_payouts WHERE id = '{first}'"), &[])
        .unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(1), r.get::<_, i64>(2)), (100_000, 7_500, 92_500));
    assert_eq!((r.get::<_, String>(3), r.get::<_, String>(4), r.get::<_, String>(5), r.get::<_, String>(6)),
               ("USD".into(), "pending".into(), ACCT.into(), "full".into()));
    assert_eq!(r.get::<_, String>(7), format!("sponsorship_{order}_full_transfer"), "deterministic idempotency key");
    assert_eq!(scalar_i64(c, &format!("SELECT application_fee_cents FROM sponsorship.sponsorship_orders WHERE id = '{order}'")), 7_500);
    assert_eq!(scalar_string(c, &format!("SELECT payout_status FROM sponsorship.sponsorship_orders WHERE id = '{order}'")), "queued");
    assert_eq!(scalar_i64(c, "SELECT count(*) FROM sponsorship.payout_queue"), 1);

    // what is refused
    let unpaid = paid_order(c, 2, 100_000, "USD", "accepted", None);
    c.batch_execute(&format!("UPDATE sponsorship.sponsorship_orders SET stripe_charge_id = NULL WHERE id = '{unpaid}'")).unwrap();
    expect_error(c, &format!("SELECT sponsorship.queue_sponsorship_payout('{unpaid}')"), "55000");
    let pending = paid_order(c, 3, 100_000, "USD", "pending", None);
    expect_error(c, &format!("SELECT sponsorship.queue_sponsorship_payout('{pending}')"), "55000");
    let small = paid_order(c, 4, 1_000, "USD", "accepted", None);
    let msg = expect_error(c, &format!("SELECT sponsorship.queue_sponsorship_payout('{small}')"), "55000");
    assert!(msg.contains("minimum payout"), "{msg}");
    expect_error(c, "SELECT sponsorship.queue_sponsorship_payout(gen_random_uuid())", "P0002");
    expect_error(c, "SELECT sponsorship.queue_sponsorship_payout(NULL)", "22004");
    c.batch_execute(&format!("UPDATE sponsorship.payout_configurations SET stripe_connect_account_id = NULL WHERE org_id = '{ORG}'"))
        .unwrap();
    let no_account = paid_order(c, 5, 100_000, "USD", "accepted", None);
    let msg = expect_error(c, &format!("SELECT sponsorship.queue_sponsorship_payout('{no_account}')"), "55000");
    assert!(msg.contains("Stripe Connect"), "{msg}");
    c.batch_execute(&format!("UPDATE sponsorship.payout_configurations SET stripe_connect_account_id = '{ACCT}' WHERE org_id = '{ORG}'"))
        .unwrap();
    // an API user who is not an admin of the organizer may not; an admin may
    c.batch_execute(
        "INSERT INTO sponsorship.org_members (org_id, user_id, role)
         VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000f1', 'editor'),
                ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000f2', 'admin');",
    )
    .unwrap();
    let by_admin = paid_order(c, 6, 100_000, "USD", "accepted", None);
    c.batch_execute("SET ROLE authenticated; SELECT set_config('request.jwt.claims', '{\"sub\":\"00000000-0000-0000-0000-0000000000f1\"}', false)")
        .unwrap();
    expect_error(c, &format!("SELECT sponsorship.queue_sponsorship_payout('{by_admin}')"), "42501");
    c.batch_execute("SELECT set_config('request.jwt.claims', '{\"sub\":\"00000000-0000-0000-0000-0000000000f2\"}', false)").unwrap();
    payout_of(c, &by_admin);
    c.batch_execute("RESET ROLE; RESET request.jwt.claims").unwrap();
}

#[test]
fn concurrent_calls_for_one_order_produce_one_payout() {
    let db = TestDb::with_extension("queuerace");
    let mut c = db.connect();
    money_fixture(&mut c);
    let order = paid_order(&mut c, 1, 100_000, "USD", "accepted", None);
    let ids: Vec<String> = (0..6)
        .map(|_| {
            let mut conn = db.connect();
            let order = order.clone();
            std::thread::spawn(move || payout_of(&mut conn, &order))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    assert_eq!(scalar_i64(&mut c, "SELECT count(*) FROM sponsorship.sponsorship_payouts"), 1);
    assert_eq!(scalar_i64(&mut c, "SELECT count(*) FROM sponsorship.payout_queue"), 1);
}

#[test]
fn a_milestone_order_is_paid_in_stages_that_sum_to_its_net() {
    let mut db = TestDb::with_extension("stages");
    let c = &mut db.client;
    money_fixture(c);
    let plan = r#"{"stages":[{"on":"accepted","share_bps":3000},{"on":"completed","share_bps":7000}]}"#;
    let order = paid_order(c, 1, 100_001, "USD", "accepted", Some(plan));
    payout_of(c, &order);
    assert_eq!(scalar_i64(c, "SELECT count(*) FROM sponsorship.sponsorship_payouts"), 1, "only the accepted stage is due");
    c.batch_execute(&format!("UPDATE sponsorship.sponsorship_orders SET status = 'completed' WHERE id = '{order}'")).unwrap();
    payout_of(c, &order);
    let rows = c
        .query("SELECT stage, gross_cents, fee_cents, amount_cents, idempotency_key FROM sponsorship.sponsorship_payouts ORDER BY stage", &[])
        .unwrap();
    assert_eq!(rows.len(), 2);
    let sum = |i: usize| rows.iter().map(|r| r.get::<_, i64>(i)).sum::<i64>();
    assert_eq!((sum(1), sum(2), sum(3)), (100_001, 7_500, 92_501));
    assert_ne!(rows[0].get::<_, String>(4), rows[1].get::<_, String>(4), "each stage its own idempotency key");
    // a bad plan is refused
    let bad = paid_order(c, 2, 100_000, "USD", "accepted", Some(r#"{"stages":[{"on":"accepted","share_bps":3000}]}"#));
    expect_error(c, &format!("SELECT sponsorship.queue_sponsorship_payout('{bad}')"), "22023");
}

/// Points this session's payout passes at the fake server.
/// A database with the money fixture, and a fake Stripe server its payout passes talk to.
fn fixture_with_fake(label: &str) -> (TestDb, FakeStripe) {
    let mut db = TestDb::with_extension(label);
    money_fixture(&mut db.client);
    let fake = FakeStripe::start();
    use_fake(&mut db.client, &fake);
    (db, fake)
}

fn use_fake(c: &mut Client, fake: &FakeStripe) {
    c.batch_execute(&format!("SET sponsorship.stripe_api_base = '{}'", fake.base_url())).unwrap();
}

fn process(c: &mut Client) -> i64 {
    scalar_i64(c, "SELECT sponsorship.process_payout_queue(50)::int8")
}

fn make_ready(c: &mut Client) {
    c.batch_execute("UPDATE sponsorship.payout_queue SET next_attempt_at = now() WHERE status = 'failed'").unwrap();
}

fn queue_row(c: &mut Client, payout: &str) -> (String, i32, Option<String>) {
    let r = c
        .query_one(&format!("SELECT status, attempts, last_error FROM sponsorship.payout_queue
                               WHERE payout_id = '{payout}' AND action = 'transfer'"), &[])
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

#[test]
fn payouts_become_one_stripe_transfer_each_with_what_stripe_needs() {
    let (mut db, fake) = fixture_with_fake("paysend");
    let c = &mut db.client;
    let orders: Vec<String> = (1..=3).map(|n| paid_order(c, n, 100_000 * n as i64, "USD", "accepted", None)).collect();
    for o in &orders {
        payout_of(c, o);
    }
    assert_eq!(process(c), 3);
    let transfers = fake.transfers();
    assert_eq!(transfers.len(), 3);
    for o in &orders {
        let (payout, key, net): (String, String, i64) = {
            let r = c
                .query_one(&format!("SELECT id::text, idempotency_key, amount_cents FROM sponsorship.sponsorship_payouts WHERE order_id = '{o}'"), &[])
                .unwrap();
            (r.get(0), r.get(1), r.get(2))
        };
        let t = transfers.iter().find(|t| t["idempotency_key"] == json!(key)).expect("a transfer with the payout's key");
        let obj = &t["transfer"];
        assert_eq!(obj["amount"], json!(net));
        assert_eq!(obj["currency"], json!("usd"));
        assert_eq!(obj["destination"], json!(ACCT));
        assert_eq!(obj["transfer_group"], json!(format!("order_{o}")));
        assert_eq!(obj["metadata"]["payout_id"], json!(payout));
        assert_eq!(obj["metadata"]["order_id"], json!(o));
        let r = c
            .query_one(&format!("SELECT p.status, p.stripe_transfer_id, o.payout_status, o.stripe_transfer_id
                                   FROM sponsorship.sponsorship_payouts p JOIN sponsorship.sponsorship_orders o ON o.id = p.order_id
                                  WHERE p.id = '{payout}'"), &[])
            .unwrap();
        assert_eq!(r.get::<_, String>(0), "completed");
        assert_eq!(r.get::<_, Option<String>>(1).as_deref(), obj["id"].as_str());
        assert_eq!(r.get::<_, String>(2), "paid");
        assert_eq!(r.get::<_, Option<String>>(3).as_deref(), obj["id"].as_str());
    }
    // nothing is sent twice
    assert_eq!(process(c), 0);
    assert_eq!(fake.transfers().len(), 3);
    assert!(fake.requests().iter().all(|r| r["auth_valid"] == json!(true)));
    // the run is logged
    assert_eq!(
        scalar_i64(c, "SELECT completed::int8 FROM sponsorship.payout_runs WHERE source = 'process_payout_queue' AND claimed = 3"),
        3
    );
    // the ledger
    let r = c
        .query_one(&format!("SELECT payouts, gross_cents, fee_cents, net_cents, paid_cents
                               FROM sponsorship.v_payout_ledger WHERE org_id = '{ORG}'"), &[])
        .unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(3), r.get::<_, i64>(4)), (3, 600_000 - 45_000, 600_000 - 45_000));
}

#[test]
fn server_errors_and_rate_limits_are_retried_with_the_same_key_and_pay_once() {
    let (mut db, fake) = fixture_with_fake("payretry");
    let c = &mut db.client;
    let order = paid_order(c, 1, 100_000, "USD", "accepted", None);
    let payout = payout_of(c, &order);
    fake.script(json!([
        {"method": "POST", "path_prefix": "/v1/transfers", "action": "status", "status": 500, "times": 1},
        {"method": "POST", "path_prefix": "/v1/transfers", "action": "status", "status": 429,
         "headers": {"Retry-After": "7"}, "times": 1}
    ]));
    assert_eq!(process(c), 1);
    let (status, attempts, err) = queue_row(c, &payout);
    assert_eq!((status.as_str(), attempts), ("failed", 1));
    assert!(err.unwrap_or_default().contains("500"));
    assert_eq!(scalar_string(c, &format!("SELECT status FROM sponsorship.sponsorship_payouts WHERE id = '{payout}'")), "pending");
    assert!(scalar_bool(c, &format!("SELECT next_attempt_at > now() FROM sponsorship.payout_queue WHERE payout_id = '{payout}'")));
    assert_eq!(process(c), 0, "not ready before its backoff");
    make_ready(c);
    assert_eq!(process(c), 1);
    let (status, attempts, _) = queue_row(c, &payout);
    assert_eq!((status.as_str(), attempts), ("failed", 2));
    assert!(scalar_bool(c, &format!(
        "SELECT next_attempt_at >= now() + interval '6 seconds' FROM sponsorship.payout_queue WHERE payout_id = '{payout}'"
    )), "Retry-After is honoured");
    make_ready(c);
    assert_eq!(process(c), 1);
    assert_eq!(queue_row(c, &payout).0, "completed");
    assert_eq!(fake.transfers().len(), 1);
    let keys: Vec<_> = fake.requests().iter().map(|r| r["idempotency_key"].clone()).collect();
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|k| *k == keys[0]), "every attempt used the same key: {keys:?}");
}

#[test]
fn refused_payouts_are_not_retried_and_repeated_failures_are_dead_lettered() {
    let (mut db, fake) = fixture_with_fake("paydead");
    let c = &mut db.client;
    let refused = paid_order(c, 1, 100_000, "USD", "accepted", None);
    let p1 = payout_of(c, &refused);
    fake.script(json!([{"method": "POST", "path_prefix": "/v1/transfers", "action": "status", "status": 400,
                        "code": "account_invalid", "message": "No such destination", "times": 1}]));
    assert_eq!(process(c), 1);
    let (status, _, err) = queue_row(c, &p1);
    assert_eq!(status, "dead", "a 4xx is not retried");
    assert!(err.unwrap_or_default().contains("No such destination"));
    let r = c
        .query_one(&format!("SELECT p.status, p.failure_reason, o.payout_status FROM sponsorship.sponsorship_payouts p
                               JOIN sponsorship.sponsorship_orders o ON o.id = p.order_id WHERE p.id = '{p1}'"), &[])
        .unwrap();
    assert_eq!((r.get::<_, String>(0), r.get::<_, String>(2)), ("failed".into(), "failed".into()));
    assert!(r.get::<_, Option<String>>(1).unwrap_or_default().contains("No such destination"));

    // three server errors with max_attempts 3: dead after the third, with the reason kept
    let flaky = paid_order(c, 2, 100_000, "USD", "accepted", None);
    let p2 = payout_of(c, &flaky);
    c.batch_execute(&format!("UPDATE sponsorship.payout_queue SET max_attempts = 3 WHERE payout_id = '{p2}'")).unwrap();
    fake.script(json!([{"method": "POST", "path_prefix": "/v1/transfers", "action": "status", "status": 503, "times": 3}]));
    for attempt in 1..=3 {
        make_ready(c);
        assert_eq!(process(c), 1, "attempt {attempt}");
    }
    let (status, attempts, err) = queue_row(c, &p2);
    assert_eq!((status.as_str(), attempts), ("dead", 3));
    assert!(err.unwrap_or_default().contains("503"));
    make_ready(c);
    assert_eq!(process(c), 0, "a dead row is not retried");
    // Stripe-Should-Retry: false on a 5xx is final too
    let final500 = paid_order(c, 3, 100_000, "USD", "accepted", None);
    let p3 = payout_of(c, &final500);
    fake.script(json!([{"method": "POST", "path_prefix": "/v1/transfers", "action": "status", "status": 500,
                        "headers": {"Stripe-Should-Retry": "false"}, "times": 1}]));
    assert_eq!(process(c), 1);
    assert_eq!(queue_row(c, &p3).0, "dead");
    assert!(fake.transfers().is_empty());
}

#[test]
fn a_request_that_may_have_reached_stripe_is_resent_with_its_key_and_pays_once() {
    let (mut db, fake) = fixture_with_fake("payunknown");
    let c = &mut db.client;
    // Stripe does it, then the connection drops before the answer; Stripe never gets it;
    // Stripe is slower than the client's timeout but does it
    for (n, rule) in [
        (1, json!({"action": "drop_after_commit"})),
        (2, json!({"action": "drop_before_commit"})),
        (3, json!({"action": "timeout", "seconds": 5})),
    ] {
        fake.http("POST", "/__control/reset", "", &[]);
        let order = paid_order(c, n, 100_000, "USD", "accepted", None);
        let payout = payout_of(c, &order);
        let mut r = rule.clone();
        r["method"] = json!("POST");
        r["path_prefix"] = json!("/v1/transfers");
        r["times"] = json!(1);
        fake.script(json!([r]));
        assert_eq!(process(c), 1);
        let (status, _, err) = queue_row(c, &payout);
        assert_eq!(status, "failed", "{rule}: retried, not dead");
        assert!(err.unwrap_or_default().contains("unknown"), "{rule}");
        if rule["action"] == json!("timeout") {
            std::thread::sleep(std::time::Duration::from_secs(4)); // the slow request commits meanwhile
        }
        make_ready(c);
        assert_eq!(process(c), 1);
        assert_eq!(queue_row(c, &payout).0, "completed", "{rule}");
        assert_eq!(fake.transfers().len(), 1, "{rule}: paid exactly once");
        let t = fake.transfers()[0]["id"].clone();
        assert_eq!(
            json!(scalar_string(c, &format!("SELECT stripe_transfer_id FROM sponsorship.sponsorship_payouts WHERE id = '{payout}'"))),
            t
        );
    }
}

#[test]
fn a_payout_that_may_have_reached_stripe_is_never_given_up_and_a_refund_meanwhile_reverses_it() {
    let (mut db, fake) = fixture_with_fake("paymaybe");
    let c = &mut db.client;
    let order = paid_order(c, 1, 100_000, "USD", "accepted", None);
    let payout = payout_of(c, &order);
    c.batch_execute(&format!("UPDATE sponsorship.payout_queue SET max_attempts = 2 WHERE payout_id = '{payout}'"))
        .unwrap();
    // Stripe makes the transfer but the answer is lost; then it answers 503
    fake.script(json!([
        {"method": "POST", "path_prefix": "/v1/transfers", "action": "drop_after_commit"},
        {"method": "POST", "path_prefix": "/v1/transfers", "action": "status", "status": 503},
    ]));
    assert_eq!(process(c), 1);
    make_ready(c);
    assert_eq!(process(c), 1);
    let (status, attempts, _) = queue_row(c, &payout);
    assert_eq!((status.as_str(), attempts), ("failed", 2), "at max_attempts, but it may have been paid: not dead");
    assert!(scalar_bool(c, &format!("SELECT maybe_sent FROM sponsorship.payout_queue WHERE payout_id = '{payout}'")));
    // the order is refunded meanwhile: the payout is not cancelled as unsent
    c.batch_execute(&format!("UPDATE sponsorship.sponsorship_orders SET status = 'refunded' WHERE id = '{order}'")).unwrap();
    assert_eq!(queue_row(c, &payout).0, "failed");
    assert_ne!(
        scalar_string(c, &format!("SELECT status FROM sponsorship.sponsorship_payouts WHERE id = '{payout}'")),
        "failed"
    );
    // the resend gets Stripe's stored answer; the transfer done, its reversal follows
    make_ready(c);
    assert_eq!(process(c), 1);
    assert_eq!(queue_row(c, &payout).0, "completed");
    assert_eq!(process(c), 1, "the reversal queued when the transfer was recorded");
    assert_eq!(
        scalar_string(c, &format!("SELECT status FROM sponsorship.sponsorship_payouts WHERE id = '{payout}'")),
        "reversed"
    );
    assert_eq!(fake.transfers().len(), 1, "paid exactly once");
    assert_eq!(fake.transfers()[0]["reversals"].as_array().map(|a| a.len()).unwrap_or(0), 1, "and taken back once");
}

#[test]
fn a_payout_left_unknown_by_a_crash_is_reconciled_with_its_own_key() {
    let (mut db, fake) = fixture_with_fake("payreconcile");
    let c = &mut db.client;
    let order = paid_order(c, 1, 100_000, "USD", "accepted", None);
    let payout = payout_of(c, &order);
    let (key, net): (String, i64) = {
        let r = c
            .query_one(&format!("SELECT idempotency_key, amount_cents FROM sponsorship.sponsorship_payouts WHERE id = '{payout}'"), &[])
            .unwrap();
        (r.get(0), r.get(1))
    };
    // as if a sender claimed it, reached Stripe and died before recording
    c.batch_execute(&format!(
        "UPDATE sponsorship.payout_queue SET status = 'processing', attempts = 1, locked_at = now() - interval '1 hour'
          WHERE payout_id = '{payout}';
         UPDATE sponsorship.sponsorship_payouts SET status = 'processing' WHERE id = '{payout}';"
    ))
    .unwrap();
    let body = format!(
        "amount={net}&currency=usd&destination={ACCT}&transfer_group=order_{order}&description=Sponsorship+payout+%28full+stage%29+of+order+{order}&metadata%5Bpayout_id%5D={payout}&metadata%5Border_id%5D={order}&metadata%5Borg_id%5D={ORG}&metadata%5Bstage%5D=full"
    );
    let (status, created) = fake.http(
        "POST",
        "/v1/transfers",
        &body,
        &[("Authorization", &format!("Bearer {}", fake.key)), ("Idempotency-Key", &key),
          ("Content-Type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(status, 200, "{created}");
    assert_eq!(scalar_i64(c, "SELECT count(*) FROM sponsorship.v_unknown_payouts"), 1);
    let rows = c
        .query("SELECT payout_id::text, action, outcome, stripe_id FROM sponsorship.reconcile_payouts()", &[])
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), payout);
    assert_eq!(rows[0].get::<_, String>(2), "completed");
    assert_eq!(rows[0].get::<_, Option<String>>(3).as_deref(), created["id"].as_str(), "Stripe's first answer");
    assert_eq!(fake.transfers().len(), 1, "the transfer was not made again");
    assert_eq!(scalar_i64(c, "SELECT count(*) FROM sponsorship.v_unknown_payouts"), 0);
}

#[test]
fn a_refund_after_payout_reverses_each_paid_stage_once() {
    let (mut db, fake) = fixture_with_fake("payreverse");
    let c = &mut db.client;
    let order = paid_order(c, 1, 100_000, "USD", "completed",
                           Some(r#"{"stages":[{"on":"accepted","share_bps":5000},{"on":"completed","share_bps":5000}]}"#));
    payout_of(c, &order);
    assert_eq!(process(c), 2);
    assert_eq!(scalar_string(c, &format!("SELECT payout_status FROM sponsorship.sponsorship_orders WHERE id = '{order}'")), "paid");
    c.batch_execute(&format!("UPDATE sponsorship.sponsorship_orders SET status = 'refunded' WHERE id = '{order}'")).unwrap();
    assert_eq!(scalar_i64(c, "SELECT count(*) FROM sponsorship.payout_queue WHERE action = 'reversal'"), 2);
    assert_eq!(process(c), 2);
    let transfers = fake.transfers();
    assert_eq!(transfers.len(), 2);
    assert!(transfers.iter().all(|t| t["reversals"].as_array().map(|r| r.len()) == Some(1)), "{transfers:?}");
    assert_eq!(scalar_i64(c, "SELECT count(*) FROM sponsorship.sponsorship_payouts WHERE status = 'reversed' AND stripe_reversal_id LIKE 'trr_%'"), 2);
    assert_eq!(scalar_string(c, &format!("SELECT payout_status FROM sponsorship.sponsorship_orders WHERE id = '{order}'")), "reversed");
    assert_eq!(process(c), 0);
}

#[test]
fn two_concurrent_processors_never_send_a_payout_twice() {
    let db = TestDb::with_extension("paytwo");
    let mut c = db.connect();
    money_fixture(&mut c);
    let fake = FakeStripe::start();
    fake.latency(30);
    for n in 1..=40 {
        let o = paid_order(&mut c, n, 100_000 + n as i64, "USD", "accepted", None);
        payout_of(&mut c, &o);
    }
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let mut conn = db.connect();
            let base = fake.base_url();
            std::thread::spawn(move || {
                conn.batch_execute(&format!("SET sponsorship.stripe_api_base = '{base}'")).unwrap();
                let mut n = 0;
                loop {
                    let got = scalar_i64(&mut conn, "SELECT sponsorship.process_payout_queue(7)::int8");
                    if got == 0 {
                        break n;
                    }
                    n += got;
                }
            })
        })
        .collect();
    let total: i64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 40, "each payout claimed by exactly one processor");
    assert_eq!(fake.transfers().len(), 40);
    let mut keys: Vec<String> = fake.requests().iter().filter_map(|r| r["idempotency_key"].as_str().map(str::to_owned)).collect();
    let sent = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!((sent, keys.len()), (40, 40), "one request per payout");
    assert_eq!(scalar_i64(&mut c, "SELECT count(*) FROM sponsorship.sponsorship_payouts WHERE status = 'completed'"), 40);
}

#[test]
fn the_secret_key_is_superuser_only_and_never_stored_or_shown() {
    let mut db = TestDb::with_extension("paysecret");
    let c = &mut db.client;
    money_fixture(c);
    let fake = FakeStripe::start_with_key("sk_test_aDifferentKeyThanTheServers99");
    use_fake(c, &fake);
    let order = paid_order(c, 1, 100_000, "USD", "accepted", None);
    let payout = payout_of(c, &order);
    assert_eq!(process(c), 1);
    let (status, _, err) = queue_row(c, &payout);
    assert_eq!(status, "dead", "a wrong key is refused, not retried");
    let err = err.unwrap_or_default();
    assert!(err.contains("401") || err.to_lowercase().contains("api key"), "{err}");
    // the server's key appears nowhere the extension writes
    let leaks = scalar_i64(c, &format!(
        "SELECT (SELECT count(*) FROM sponsorship.payout_queue WHERE last_error LIKE '%{TEST_STRIPE_KEY}%')
              + (SELECT count(*) FROM sponsorship.sponsorship_payouts WHERE failure_reason LIKE '%{TEST_STRIPE_KEY}%')
              + (SELECT count(*) FROM sponsorship.payout_runs WHERE detail::text LIKE '%{TEST_STRIPE_KEY}%'
                                                                  OR error LIKE '%{TEST_STRIPE_KEY}%')"
    ));
    assert_eq!(leaks, 0);
    // only superusers read or set it
    c.batch_execute("SET ROLE service_role").unwrap();
    expect_error(c, "SHOW sponsorship.stripe_secret_key_file", "42501");
    expect_error(c, "SET sponsorship.stripe_api_base = 'http://127.0.0.1:1'", "42501");
    assert_eq!(
        scalar_i64(c, "SELECT count(*) FROM pg_settings WHERE name LIKE 'sponsorship.stripe_secret%'"),
        0,
        "not listed for others"
    );
    c.batch_execute("RESET ROLE").unwrap();
    // the key file is the server's: not even a superuser's session can point passes elsewhere
    expect_error(c, "SET sponsorship.stripe_secret_key_file = '/tmp/other'", "55P02");
    // the key is not a setting (Postgres would log its value on reload)
    assert_eq!(
        scalar_i64(c, "SELECT count(*) FROM pg_settings WHERE name = 'sponsorship.stripe_secret_key'"),
        0
    );
    // plain http to a remote host is refused (the key would cross the network in clear)
    c.batch_execute("SET sponsorship.stripe_api_base = 'http://payments.example.com'").unwrap();
    let _ = paid_order(c, 2, 100_000, "USD", "accepted", None);
    let msg = expect_error(c, "SELECT sponsorship.process_payout_queue(5)", "F0000");
    assert!(msg.contains("stripe_api_base") && !msg.contains(TEST_STRIPE_KEY), "{msg}");
}

#[test]
fn organizations_with_automatic_payouts_are_queued_on_their_schedule() {
    let mut db = TestDb::with_extension("payauto");
    let c = &mut db.client;
    money_fixture(c);
    let a = paid_order(c, 1, 100_000, "USD", "accepted", None);
    let _pending = paid_order(c, 2, 100_000, "USD", "pending", None);
    assert_eq!(scalar_i64(c, "SELECT sponsorship.queue_due_payouts()::int8"), 0, "manual schedule");
    c.batch_execute(&format!(
        "UPDATE sponsorship.payout_configurations SET auto_payout_enabled = true, payout_schedule = 'daily' WHERE org_id = '{ORG}'"
    ))
    .unwrap();
    assert_eq!(scalar_i64(c, "SELECT sponsorship.queue_due_payouts()::int8"), 1);
    assert_eq!(scalar_i64(c, &format!("SELECT count(*) FROM sponsorship.sponsorship_payouts WHERE order_id = '{a}'")), 1);
    let b = paid_order(c, 3, 100_000, "USD", "accepted", None);
    assert_eq!(scalar_i64(c, "SELECT sponsorship.queue_due_payouts()::int8"), 0, "not due again until tomorrow");
    c.batch_execute(&format!(
        "UPDATE sponsorship.payout_configurations SET last_auto_payout_at = now() - interval '25 hours' WHERE org_id = '{ORG}'"
    ))
    .unwrap();
    assert_eq!(scalar_i64(c, "SELECT sponsorship.queue_due_payouts()::int8"), 1);
    assert_eq!(scalar_i64(c, &format!("SELECT count(*) FROM sponsorship.sponsorship_payouts WHERE order_id = '{b}'")), 1);
}
