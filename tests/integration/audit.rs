//! The audit trail (SPEC §7b): every change of money settings and every match decision
//! leaves exactly one audit row naming who made it; observed changes of the platform's
//! default fee are logged; nobody can change or remove an audit row.
use sponsorship_integration_tests::*;

const ORG_A: &str = "00000000-0000-0000-0000-00000000000a";
const ORG_B: &str = "00000000-0000-0000-0000-00000000000b";
const SPONSOR: &str = "00000000-0000-0000-0000-0000000000b1";
const EVENT_A: &str = "00000000-0000-0000-0000-0000000000e1";
const MATCH: &str = "00000000-0000-0000-0000-0000000000d1";
const A_ADMIN: &str = "10000000-0000-0000-0000-000000000002";
const A_VIEWER: &str = "10000000-0000-0000-0000-000000000001";
const B_ADMIN: &str = "10000000-0000-0000-0000-000000000009";
const S_EDITOR: &str = "20000000-0000-0000-0000-000000000001";
const S_ADMIN: &str = "20000000-0000-0000-0000-000000000002";

fn marketplace() -> TestDb {
    let mut db = TestDb::with_extension("audit");
    db.client
        .batch_execute(&format!(
            "INSERT INTO sponsorship.organizations (id, name) VALUES ('{ORG_A}', 'Org A'), ('{ORG_B}', 'Org B');
             INSERT INTO sponsorship.org_members (org_id, user_id, role) VALUES
               ('{ORG_A}', '{A_ADMIN}', 'admin'), ('{ORG_A}', '{A_VIEWER}', 'viewer'), ('{ORG_B}', '{B_ADMIN}', 'admin');
             INSERT INTO sponsorship.sponsors (id, name) VALUES ('{SPONSOR}', 'Brand');
             INSERT INTO sponsorship.sponsor_members (sponsor_id, user_id, role) VALUES
               ('{SPONSOR}', '{S_EDITOR}', 'editor'), ('{SPONSOR}', '{S_ADMIN}', 'admin');
             INSERT INTO sponsorship.events (id, org_id, title, start_at) VALUES ('{EVENT_A}', '{ORG_A}', 'Fest', now() + interval '9 days');
             INSERT INTO sponsorship.sponsorship_matches (id, event_id, sponsor_id, score, weights_version)
             VALUES ('{MATCH}', '{EVENT_A}', '{SPONSOR}', 0.8123, 1);"
        ))
        .unwrap();
    db
}


fn reset(c: &mut Client) {
    c.batch_execute("RESET ROLE; SELECT set_config('request.jwt.claims', '', false)")
        .unwrap();
}

/// Audit rows after `after_id`, as (object_type, action, actor_user_id, actor_role, old, new).
type AuditRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<serde_json::Value>,
    Option<serde_json::Value>,
);

fn audit_since(c: &mut Client, after_id: i64) -> Vec<AuditRow> {
    c.query(
        "SELECT object_type, action, actor_user_id::text, actor_role, old_values, new_values
           FROM sponsorship.audit_log WHERE id > $1 ORDER BY id",
        &[&after_id],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
    .collect()
}

fn last_id(c: &mut Client) -> i64 {
    scalar_i64(c, "SELECT COALESCE(max(id), 0) FROM sponsorship.audit_log")
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn each_payout_setting_change_leaves_one_row_with_its_actor() {
    let mut db = marketplace();
    let c = &mut db.client;
    let start = last_id(c);

    // an org admin, through the API role, creates the configuration
    act_as(c, "authenticated", Some(A_ADMIN));
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.payout_configurations (org_id, stripe_connect_account_id, payout_schedule)
         VALUES ('{ORG_A}', 'acct_First', 'monthly')"
    ))
    .unwrap();
    let rows = audit_since(c, start);
    reset(c);
    let rows_all = audit_since(c, start);
    assert_eq!(
        rows, rows_all,
        "the org admin reads its organization's audit rows"
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (kind, action, user, role, old, new) = &rows[0];
    assert_eq!(
        (kind.as_str(), action.as_str()),
        ("payout_configuration", "insert")
    );
    assert_eq!((user, role), (&s(A_ADMIN), &s("authenticated")));
    assert_eq!(old, &None);
    let new = new.as_ref().unwrap();
    assert_eq!(new["stripe_connect_account_id"], "acct_First");
    assert_eq!(new["payout_schedule"], "monthly");
    assert_eq!(new["platform_fee_bps"], serde_json::Value::Null);

    // two money settings in one statement: one row with both
    let mark = last_id(c);
    act_as(c, "authenticated", Some(A_ADMIN));
    c.batch_execute(&format!(
        "UPDATE sponsorship.payout_configurations SET payout_schedule = 'weekly', auto_payout_enabled = true
          WHERE org_id = '{ORG_A}'"
    ))
    .unwrap();
    reset(c);
    let rows = audit_since(c, mark);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0].4,
        Some(serde_json::json!({"payout_schedule": "monthly", "auto_payout_enabled": false}))
    );
    assert_eq!(
        rows[0].5,
        Some(serde_json::json!({"payout_schedule": "weekly", "auto_payout_enabled": true}))
    );

    // the platform sets the fee rate (service_role, no user)
    let mark = last_id(c);
    act_as(c, "service_role", None);
    c.batch_execute(&format!(
        "UPDATE sponsorship.payout_configurations SET platform_fee_bps = 725 WHERE org_id = '{ORG_A}'"
    ))
    .unwrap();
    reset(c);
    let rows = audit_since(c, mark);
    assert_eq!(rows.len(), 1);
    assert_eq!((&rows[0].2, &rows[0].3), (&None, &s("service_role")));
    assert_eq!(
        rows[0].4,
        Some(serde_json::json!({"platform_fee_bps": null}))
    );
    assert_eq!(
        rows[0].5,
        Some(serde_json::json!({"platform_fee_bps": 725}))
    );

    // bookkeeping and no-op updates leave nothing
    let mark = last_id(c);
    c.batch_execute(&format!(
        "UPDATE sponsorship.payout_configurations SET last_auto_payout_at = now() WHERE org_id = '{ORG_A}';
         UPDATE sponsorship.payout_configurations SET platform_fee_bps = 725 WHERE org_id = '{ORG_A}';"
    ))
    .unwrap();
    assert_eq!(audit_since(c, mark), vec![]);

    // a change that fails leaves nothing either
    let before = last_id(c);
    expect_error(
        c,
        &format!("UPDATE sponsorship.payout_configurations SET platform_fee_bps = 20000 WHERE org_id = '{ORG_A}'"),
        "23514",
    );
    assert_eq!(last_id(c), before);

    // deleting, by the superuser's own session: the database role is the actor
    let mark = last_id(c);
    c.batch_execute(&format!(
        "DELETE FROM sponsorship.payout_configurations WHERE org_id = '{ORG_A}'"
    ))
    .unwrap();
    let rows = audit_since(c, mark);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].1.as_str(), &rows[0].2, &rows[0].3),
        ("delete", &None, &s("postgres"))
    );
    assert_eq!(rows[0].4.as_ref().unwrap()["platform_fee_bps"], 725);
    assert_eq!(rows[0].5, None);
}

#[test]
fn each_match_decision_leaves_one_row_and_rescoring_none() {
    let mut db = marketplace();
    let c = &mut db.client;
    let start = last_id(c);
    // rescoring the pair touches score and metrics, never status
    c.batch_execute(&format!(
        "UPDATE sponsorship.sponsorship_matches SET score = 0.7, computed_at = now() WHERE id = '{MATCH}'"
    ))
    .unwrap();
    assert_eq!(audit_since(c, start), vec![]);

    act_as(c, "authenticated", Some(S_EDITOR));
    c.batch_execute(&format!(
        "UPDATE sponsorship.sponsorship_matches SET status = 'accepted' WHERE id = '{MATCH}'"
    ))
    .unwrap();
    // the same status again is no decision
    c.batch_execute(&format!(
        "UPDATE sponsorship.sponsorship_matches SET status = 'accepted' WHERE id = '{MATCH}'"
    ))
    .unwrap();
    reset(c);
    let rows = audit_since(c, start);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("sponsorship_match", "update")
    );
    assert_eq!(
        (&rows[0].2, &rows[0].3),
        (&s(S_EDITOR), &s("authenticated"))
    );
    assert_eq!(rows[0].4, Some(serde_json::json!({"status": "pending"})));
    assert_eq!(rows[0].5, Some(serde_json::json!({"status": "accepted"})));
    let r = c
        .query_one(
            "SELECT org_id::text, sponsor_id::text, event_id::text, (context ->> 'score')::numeric::text
               FROM sponsorship.audit_log WHERE object_type = 'sponsorship_match'",
            &[],
        )
        .unwrap();
    assert_eq!(
        (
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            r.get::<_, String>(2),
            r.get::<_, String>(3)
        ),
        (
            ORG_A.to_string(),
            SPONSOR.to_string(),
            EVENT_A.to_string(),
            "0.70000".to_string()
        )
    );

    // an organizer's admin rejects it later: a second row, with that actor
    let mark = last_id(c);
    act_as(c, "authenticated", Some(A_ADMIN));
    c.batch_execute(&format!(
        "UPDATE sponsorship.sponsorship_matches SET status = 'rejected' WHERE id = '{MATCH}'"
    ))
    .unwrap();
    reset(c);
    let rows = audit_since(c, mark);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].2, s(A_ADMIN));
    assert_eq!(rows[0].5, Some(serde_json::json!({"status": "rejected"})));

    // a match inserted already decided is a decision too; one inserted pending is not
    let mark = last_id(c);
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.events (id, org_id, title, start_at)
         VALUES ('00000000-0000-0000-0000-0000000000e2', '{ORG_A}', 'Fest 2', now() + interval '20 days');
         INSERT INTO sponsorship.sponsorship_matches (event_id, sponsor_id, score, status) VALUES
           ('00000000-0000-0000-0000-0000000000e2', '{SPONSOR}', 0.5, 'accepted');"
    ))
    .unwrap();
    let rows = audit_since(c, mark);
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].1.as_str(), &rows[0].4), ("insert", &None));
}

#[test]
fn audit_rows_cannot_be_changed_or_removed_by_anyone() {
    let mut db = marketplace();
    let c = &mut db.client;
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.payout_configurations (org_id, stripe_connect_account_id) VALUES ('{ORG_A}', 'acct_A');
         UPDATE sponsorship.sponsorship_matches SET status = 'accepted' WHERE id = '{MATCH}';"
    ))
    .unwrap();
    let before: Vec<String> = c
        .query(
            "SELECT a::text FROM sponsorship.audit_log a ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        before.len(),
        3,
        "install observation, config insert, match decision"
    );

    // the service role can read everything but change nothing
    act_as(c, "service_role", None);
    assert_eq!(
        scalar_i64(c, "SELECT count(*) FROM sponsorship.audit_log"),
        3
    );
    expect_error(
        c,
        "UPDATE sponsorship.audit_log SET actor_role = 'nobody'",
        "42501",
    );
    expect_error(c, "DELETE FROM sponsorship.audit_log", "42501");
    expect_error(c, "TRUNCATE sponsorship.audit_log", "42501");
    expect_error(
        c,
        "INSERT INTO sponsorship.audit_log (object_type, object_id, action) VALUES ('platform_setting', 'x', 'observed')",
        "42501",
    );
    // org admins, through the API: not even the rows about their own organization
    act_as(c, "authenticated", Some(A_ADMIN));
    expect_error(
        c,
        "UPDATE sponsorship.audit_log SET actor_role = 'nobody'",
        "42501",
    );
    expect_error(c, "DELETE FROM sponsorship.audit_log", "42501");
    act_as(c, "anon", None);
    expect_error(c, "SELECT count(*) FROM sponsorship.audit_log", "42501");
    // the table's owner (a superuser) is refused by the table itself
    reset(c);
    let m = expect_error(
        c,
        "UPDATE sponsorship.audit_log SET actor_role = 'nobody'",
        "42501",
    );
    assert!(m.contains("append-only"), "{m}");
    expect_error(c, "DELETE FROM sponsorship.audit_log", "42501");
    expect_error(c, "TRUNCATE sponsorship.audit_log", "42501");
    // deleting what the rows describe keeps them (and logs the configuration's deletion)
    c.batch_execute(&format!(
        "DELETE FROM sponsorship.organizations WHERE id = '{ORG_A}'"
    ))
    .unwrap();
    let after: Vec<String> = c
        .query(
            "SELECT a::text FROM sponsorship.audit_log a ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(&after[..3], &before[..]);
    assert_eq!(after.len(), 4);
    assert_eq!(
        scalar_string(c, "SELECT object_type || ':' || action FROM sponsorship.audit_log ORDER BY id DESC LIMIT 1"),
        "payout_configuration:delete"
    );
}

#[test]
fn org_admins_read_their_organizations_rows_and_sponsor_admins_their_matches() {
    let mut db = marketplace();
    let c = &mut db.client;
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.payout_configurations (org_id, stripe_connect_account_id) VALUES
           ('{ORG_A}', 'acct_A'), ('{ORG_B}', 'acct_B');
         UPDATE sponsorship.sponsorship_matches SET status = 'suggested' WHERE id = '{MATCH}';"
    ))
    .unwrap();
    let seen = |c: &mut Client, role: &str, user: &str| -> Vec<String> {
        act_as(c, role, Some(user));
        let v = c
            .query("SELECT object_type || ':' || COALESCE(org_id::text, '-') FROM sponsorship.audit_log ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        reset(c);
        v
    };
    assert_eq!(
        seen(c, "authenticated", A_ADMIN),
        vec![
            format!("payout_configuration:{ORG_A}"),
            format!("sponsorship_match:{ORG_A}")
        ]
    );
    assert_eq!(
        seen(c, "authenticated", B_ADMIN),
        vec![format!("payout_configuration:{ORG_B}")]
    );
    assert_eq!(seen(c, "authenticated", A_VIEWER), Vec::<String>::new());
    assert_eq!(
        seen(c, "authenticated", S_ADMIN),
        vec![format!("sponsorship_match:{ORG_A}")]
    );
    assert_eq!(seen(c, "authenticated", S_EDITOR), Vec::<String>::new());
}

#[test]
fn observed_changes_of_the_default_fee_are_logged_once_each() {
    let db = marketplace();
    let name = db.name.clone();
    let mut first = db.connect();
    let c = &mut first;
    let states = |c: &mut Client| -> Vec<(
        Option<serde_json::Value>,
        serde_json::Value,
        Option<String>,
        String,
    )> {
        c.query(
            "SELECT old_values, new_values, actor_role, context ->> 'observed_by'
               FROM sponsorship.audit_log WHERE object_type = 'platform_setting' ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
    };
    let installed = serde_json::json!({"value": "500", "source": "default", "overrides": {}});
    assert_eq!(
        states(c),
        vec![(None, installed.clone(), None, "postgres".to_string())],
        "the state in force at CREATE EXTENSION"
    );
    assert_eq!(
        scalar_i64(c, "SELECT sponsorship.observe_platform_settings()::bigint"),
        0
    );

    // a per-database override, seen by the next payout queued (in a new session, which the
    // override reaches)
    c.batch_execute(&format!(
        "ALTER DATABASE {} SET sponsorship.platform_fee_bps = 450;
         INSERT INTO sponsorship.payout_configurations (org_id, stripe_connect_account_id) VALUES ('{ORG_A}', 'acct_A');
         INSERT INTO sponsorship.sponsorship_packages (id, event_id, title, price_cents) VALUES
           ('00000000-0000-0000-0000-0000000000f1', '{EVENT_A}', 'Gold', 100000);
         INSERT INTO sponsorship.sponsorship_orders (id, package_id, sponsor_id, event_id, amount_cents, status, stripe_charge_id)
         VALUES ('00000000-0000-0000-0000-00000000cc01', '00000000-0000-0000-0000-0000000000f1', '{SPONSOR}', '{EVENT_A}',
                 100000, 'accepted', 'ch_test1');",
        name
    ))
    .unwrap();
    let mut fresh = db.connect();
    fresh
        .batch_execute(
            "SELECT sponsorship.queue_sponsorship_payout('00000000-0000-0000-0000-00000000cc01')",
        )
        .unwrap();
    assert_eq!(
        scalar_i64(
            &mut fresh,
            "SELECT application_fee_cents FROM sponsorship.sponsorship_orders"
        ),
        4500,
        "the fee used the new default"
    );
    let overridden = serde_json::json!({
        "value": "500", "source": "default", "overrides": {format!("database {}", name): "450"}
    });
    let rows = states(&mut fresh);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows[1],
        (
            Some(installed),
            overridden.clone(),
            None,
            "postgres".to_string()
        ),
        "who changed it is not known"
    );
    // the state is server-wide: neither the old session (still at 500) nor a session's own
    // SET makes it flap
    assert_eq!(
        scalar_i64(c, "SELECT sponsorship.observe_platform_settings()::bigint"),
        0
    );
    fresh
        .batch_execute("SET sponsorship.platform_fee_bps = 0")
        .unwrap();
    assert_eq!(
        scalar_i64(
            &mut fresh,
            "SELECT sponsorship.observe_platform_settings()::bigint"
        ),
        0
    );
    // removing the override is a change again
    c.batch_execute(&format!(
        "ALTER DATABASE {} RESET sponsorship.platform_fee_bps",
        name
    ))
    .unwrap();
    assert_eq!(
        scalar_i64(c, "SELECT sponsorship.observe_platform_settings()::bigint"),
        1
    );
    assert_eq!(states(c)[2].0, Some(overridden));
    // API users may not call it directly
    act_as(&mut fresh, "authenticated", Some(A_ADMIN));
    expect_error(
        &mut fresh,
        "SELECT sponsorship.observe_platform_settings()",
        "42501",
    );
}

#[test]
fn truncating_payout_settings_logs_each_configuration() {
    let mut db = marketplace();
    let c = &mut db.client;
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.payout_configurations (org_id, stripe_connect_account_id, platform_fee_bps) VALUES
           ('{ORG_A}', 'acct_A', 300), ('{ORG_B}', 'acct_B', NULL);"
    ))
    .unwrap();
    let mark = last_id(c);
    act_as(c, "service_role", None);
    c.batch_execute("TRUNCATE sponsorship.payout_configurations")
        .unwrap();
    reset(c);
    let rows = audit_since(c, mark);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for r in &rows {
        assert_eq!(
            (r.0.as_str(), r.1.as_str(), &r.3, &r.5),
            (
                "payout_configuration",
                "truncate",
                &s("service_role"),
                &None
            )
        );
    }
    let fees: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| r.4.as_ref().unwrap()["platform_fee_bps"].clone())
        .collect();
    assert!(
        fees.contains(&serde_json::json!(300)) && fees.contains(&serde_json::Value::Null),
        "{fees:?}"
    );
}

#[test]
fn the_payout_worker_logs_a_new_default_fee_when_it_sees_one() {
    let cluster = OwnCluster::start(
        "auditworker",
        "sponsorship.worker_database = 'wobs'\nsponsorship.worker_count = 0\n\
         sponsorship.payout_naptime_ms = 100\nsponsorship.platform_fee_bps = 300",
    );
    let mut admin = cluster.connect("postgres");
    admin.batch_execute("CREATE DATABASE wobs").unwrap();
    let mut c = cluster.connect("wobs");
    c.batch_execute("SET client_min_messages = warning; CREATE EXTENSION sponsorship CASCADE")
        .unwrap();
    let observed = |c: &mut Client| -> Vec<(String, String, String)> {
        c.query(
            "SELECT new_values ->> 'value', new_values ->> 'source', context ->> 'observed_by'
               FROM sponsorship.audit_log WHERE object_type = 'platform_setting' ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
    };
    assert_eq!(
        observed(&mut c),
        vec![("300".into(), "configuration file".into(), "postgres".into())]
    );
    // nobody but the worker runs in this database: a change must be logged by it
    c.batch_execute("ALTER SYSTEM SET sponsorship.platform_fee_bps = 275")
        .unwrap();
    c.batch_execute("SELECT pg_reload_conf()").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut rows = observed(&mut c);
    while rows.len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        rows = observed(&mut c);
    }
    assert_eq!(
        rows.len(),
        2,
        "the worker did not log the new value: {rows:?}\n{}",
        cluster.log()
    );
    assert_eq!(rows[1].0, "275");
    assert_eq!(rows[1].1, "configuration file");
    let worker_ran_it = scalar_bool(
        &mut c,
        "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'client backend'
                              AND datname = 'wobs' AND pid <> pg_backend_pid())",
    );
    assert!(worker_ran_it);
    // and only once
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(observed(&mut c).len(), 2);
}
