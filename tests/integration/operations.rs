//! Operations (SPEC §7): partitions ahead with rows moved out of DEFAULT, retention, time
//! ranges that prune, refresh logging (a failing refresh too), queue health kept, the health
//! report, the views' aggregates against hand-computed values, and pg_cron really running a
//! scheduled job.
use std::time::{Duration, Instant};

use sponsorship_integration_tests::*;

const ORG: &str = "00000000-0000-0000-0000-0000000000a1";
const E1: &str = "00000000-0000-0000-0000-0000000000e1";
const E2: &str = "00000000-0000-0000-0000-0000000000e2";
const S1: &str = "00000000-0000-0000-0000-0000000000b1";
const S2: &str = "00000000-0000-0000-0000-0000000000b2";

fn month_name(c: &mut Client, parent: &str, months_from_now: i32) -> String {
    scalar_string(
        c,
        &format!(
            "SELECT '{parent}_' || to_char(date_trunc('month', now()) + make_interval(months => {months_from_now}),
                                          '\"y\"YYYY\"m\"MM')"
        ),
    )
}

#[test]
fn new_months_take_their_rows_out_of_the_default_partition() {
    let mut db = TestDb::with_extension("ops_parts");
    let c = &mut db.client;
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.organizations (id, name) VALUES ('{ORG}', 'Org');
         INSERT INTO sponsorship.events (id, org_id, title, start_at) VALUES ('{E1}', '{ORG}', 'Fest', now());
         -- five and six months ahead: beyond the partitions made at install (3 ahead)
         INSERT INTO sponsorship.event_impressions (event_id, created_at)
         SELECT '{E1}', date_trunc('month', now()) + interval '5 months' + g * interval '1 hour' FROM generate_series(1, 7) g;
         INSERT INTO sponsorship.event_impressions (event_id, created_at)
         SELECT '{E1}', date_trunc('month', now()) + interval '6 months' + interval '3 days' FROM generate_series(1, 2);
         INSERT INTO sponsorship.ticket_analytics (event_id, tickets, revenue_cents, created_at)
         VALUES ('{E1}', 2, 5000, date_trunc('month', now()) + interval '5 months' + interval '1 day');"
    ))
    .unwrap();
    assert_eq!(
        scalar_i64(
            c,
            "SELECT count(*) FROM sponsorship.event_impressions_default"
        ),
        9
    );

    // as the service role, as a scheduled job of the platform would
    c.batch_execute("SET ROLE service_role").unwrap();
    let rows = c
        .query(
            "SELECT parent, partition_name, created, rows_moved FROM sponsorship.create_next_month_partitions(5)",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 12, "months 0..5 of two tables");
    let made: Vec<(String, String, bool, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let m4 = month_name(c, "event_impressions", 4);
    let m5 = month_name(c, "event_impressions", 5);
    let t5 = month_name(c, "ticket_analytics", 5);
    let (s4, s5) = (
        &m4["event_impressions".len()..],
        &m5["event_impressions".len()..],
    );
    for (parent, name, created, moved) in &made {
        assert!(
            parent == "sponsorship.event_impressions" || parent == "sponsorship.ticket_analytics",
            "{parent}"
        );
        // install made months 0..3: months 4 and 5 are new, for both tables
        assert_eq!(*created, name.ends_with(s4) || name.ends_with(s5), "{name}");
        let expect_moved = if name == &m5 {
            7
        } else if name == &t5 {
            1
        } else {
            0
        };
        assert_eq!(*moved, expect_moved, "{name}");
    }
    // the six-months-ahead rows stay in DEFAULT until their month is made
    assert_eq!(
        scalar_i64(
            c,
            "SELECT count(*) FROM sponsorship.event_impressions_default"
        ),
        2
    );
    assert_eq!(
        scalar_i64(
            c,
            "SELECT count(*) FROM sponsorship.ticket_analytics_default"
        ),
        0
    );
    assert_eq!(
        scalar_i64(c, &format!("SELECT count(*) FROM sponsorship.{m5}")),
        7,
        "the moved rows are in their month"
    );
    // the new month is a real partition: RLS on, the service policy, the parent's indexes
    // and foreign keys
    assert!(scalar_bool(
        c,
        &format!(
            "SELECT c.relrowsecurity AND c.relispartition
                AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'service_role_all')
                AND (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid) = 3
                AND EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'f')
               FROM pg_class c WHERE c.oid = 'sponsorship.{m5}'::regclass"
        )
    ));
    expect_error(
        c,
        &format!(
            "INSERT INTO sponsorship.{m5} (event_id, created_at)
             VALUES (gen_random_uuid(), date_trunc('month', now()) + interval '5 months')"
        ),
        "23503",
    );
    // idempotent
    assert_eq!(
        scalar_i64(c, "SELECT count(*) FILTER (WHERE created) FROM sponsorship.create_next_month_partitions(5)"),
        0
    );
    // the one-argument default: sponsorship.partitions_ahead_months (3)
    assert_eq!(
        scalar_i64(
            c,
            "SELECT count(*) FROM sponsorship.create_next_month_partitions()"
        ),
        8
    );
    expect_error(
        c,
        "SELECT * FROM sponsorship.create_next_month_partitions(-1)",
        "22023",
    );
    expect_error(
        c,
        "SELECT sponsorship.create_month_partition('sponsorship.events', current_date)",
        "22023",
    );

    // a time range scans only its months
    let plan = c
        .query(
            "EXPLAIN (COSTS OFF) SELECT count(*) FROM sponsorship.event_impressions
              WHERE created_at >= date_trunc('month', now()) + interval '4 months' + interval '20 days'
                AND created_at <  date_trunc('month', now()) + interval '5 months' + interval '2 days'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n");
    let scanned: Vec<&str> = plan
        .split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
        .filter(|w| w.starts_with("event_impressions_y") && !w.contains("_idx"))
        .collect();
    let mut scanned = scanned;
    scanned.sort();
    scanned.dedup();
    assert_eq!(scanned, vec![m4.as_str(), m5.as_str()], "{plan}");
}

#[test]
fn retention_detaches_or_drops_old_months() {
    let mut db = TestDb::with_extension("ops_retention");
    let c = &mut db.client;
    expect_error(
        c,
        "SELECT * FROM sponsorship.apply_partition_retention(-1)",
        "22023",
    );
    expect_error(
        c,
        "SELECT * FROM sponsorship.apply_partition_retention(6, 'archive')",
        "22023",
    );
    // the default keeps everything
    assert_eq!(
        scalar_i64(
            c,
            "SELECT count(*) FROM sponsorship.apply_partition_retention()"
        ),
        0
    );
    let oldest = month_name(c, "event_impressions", -12);
    let kept = month_name(c, "event_impressions", -5);
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.organizations (id, name) VALUES ('{ORG}', 'Org');
         INSERT INTO sponsorship.events (id, org_id, title, start_at) VALUES ('{E1}', '{ORG}', 'Fest', now());
         INSERT INTO sponsorship.event_impressions (event_id, created_at)
         VALUES ('{E1}', date_trunc('month', now()) - interval '12 months' + interval '1 day');"
    ))
    .unwrap();
    // keep 6 months (this one and the 5 before): install made 12 past months, so 7 per table go
    let detached = c
        .query("SELECT parent, partition_name, action FROM sponsorship.apply_partition_retention(6, 'detach')", &[])
        .unwrap();
    assert_eq!(detached.len(), 14);
    assert!(detached.iter().all(|r| r.get::<_, String>(2) == "detach"));
    assert!(
        scalar_bool(c, &format!("SELECT NOT relispartition FROM pg_class WHERE oid = 'sponsorship.{oldest}'::regclass")),
        "detached, kept as a table"
    );
    assert_eq!(
        scalar_i64(c, &format!("SELECT count(*) FROM sponsorship.{oldest}")),
        1
    );
    // making that month again is refused while the detached table holds its name
    let m = expect_error(
        c,
        "SELECT sponsorship.create_month_partition('sponsorship.event_impressions',
                (date_trunc('month', now()) - interval '12 months')::date)",
        "42P07",
    );
    assert!(m.contains("not a partition"), "{m}");
    assert_eq!(
        scalar_i64(c, "SELECT count(*) FROM sponsorship.event_impressions"),
        0,
        "out of the parent"
    );
    assert!(scalar_bool(
        c,
        &format!("SELECT relispartition FROM pg_class WHERE oid = 'sponsorship.{kept}'::regclass")
    ));
    // dropping: keep 3
    let dropped = c
        .query(
            "SELECT partition_name FROM sponsorship.apply_partition_retention(3, 'drop')",
            &[],
        )
        .unwrap();
    assert_eq!(dropped.len(), 6, "months -5..-3 of two tables");
    assert!(scalar_bool(
        c,
        &format!("SELECT to_regclass('sponsorship.{kept}') IS NULL")
    ));
}

#[test]
fn refreshes_are_logged_and_a_failing_one_is_logged_and_raised() {
    let mut db = TestDb::with_extension("ops_refresh");
    let c = &mut db.client;
    assert!(scalar_i64(c, "SELECT sponsorship.refresh_package_cards()") >= 0);
    c.batch_execute("SELECT sponsorship.refresh_semantic_marketplace()")
        .unwrap();
    let ok: Vec<(String, String, bool)> = c
        .query(
            "SELECT view_name, status, duration_ms >= 0 AND finished_at >= started_at FROM sponsorship.mv_refresh_log ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        ok,
        vec![
            ("mv_package_card_stats".into(), "ok".into(), true),
            ("mv_sponsor_event_fit_scores".into(), "ok".into(), true)
        ]
    );
    // a concurrent refresh needs a unique index: without it the refresh fails
    c.batch_execute("DROP INDEX sponsorship.mv_package_card_stats_key")
        .unwrap();
    let m = expect_error(
        c,
        "BEGIN; SELECT sponsorship.refresh_package_cards(); COMMIT;",
        "55000",
    );
    assert!(m.contains("mv_package_card_stats"), "{m}");
    c.batch_execute("ROLLBACK").unwrap();
    // the caller's transaction rolled back, yet the failure is in the log
    let (status, error): (String, String) = {
        let r = c
            .query_one(
                "SELECT status, error FROM sponsorship.mv_refresh_log WHERE view_name = 'mv_package_card_stats'
                  ORDER BY id DESC LIMIT 1",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(status, "error");
    assert!(
        error.starts_with("55000: cannot refresh materialized view"),
        "{error}"
    );
    // and the health report shows it
    assert_eq!(
        scalar_string(c, "SELECT status FROM sponsorship.health() WHERE area = 'refresh' AND item = 'mv_package_card_stats'"),
        "critical"
    );
    // API users may not refresh
    c.batch_execute("SET ROLE authenticated").unwrap();
    expect_error(c, "SELECT sponsorship.refresh_package_cards()", "42501");
}

#[test]
fn queue_health_is_kept_and_warns_over_thresholds() {
    let mut db = TestDb::with_extension("ops_health");
    let (mut w, notices) = db.connect_collecting_notices();
    let c = &mut db.client;
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.organizations (id, name) VALUES ('{ORG}', 'Org');
         INSERT INTO sponsorship.events (id, org_id, title, start_at) VALUES ('{E1}', '{ORG}', 'Fest', now() + interval '3 days');
         UPDATE sponsorship.fit_recalc_queue SET enqueued_at = now() - interval '2 hours';"
    ))
    .unwrap();
    let rows = w
        .query(
            "SELECT queue, pending, status, problems FROM sponsorship.record_queue_health(10000, interval '1 hour', 0)",
            &[],
        )
        .unwrap();
    let got: Vec<(String, i64, String, Vec<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, "fit_recalc_queue");
    assert_eq!(got[0].1, 1, "the new event's recalculation");
    assert_eq!(got[0].2, "warning");
    assert!(
        got[0].3[0].starts_with("oldest pending item waiting 02:00"),
        "{:?}",
        got[0].3
    );
    assert_eq!(
        (got[1].0.as_str(), got[1].2.as_str()),
        ("payout_queue", "ok")
    );
    assert!(notices
        .lock()
        .unwrap()
        .iter()
        .any(|n| n.contains("fit_recalc_queue") && n.contains("oldest pending")));
    assert_eq!(
        scalar_i64(c, "SELECT count(*) FROM sponsorship.queue_health_log"),
        2
    );
    expect_error(
        c,
        "SELECT * FROM sponsorship.record_queue_health(-1)",
        "22023",
    );

    // the health report: every area, partitions ahead, no pg_cron in this database
    let report: Vec<(String, String, String)> = c
        .query("SELECT area, item, status FROM sponsorship.health()", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let areas: std::collections::BTreeSet<&str> = report.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        areas.into_iter().collect::<Vec<_>>(),
        vec![
            "embeddings",
            "jobs",
            "partitions",
            "payout queue",
            "recalc queue",
            "refresh"
        ]
    );
    let status = |item: &str| {
        report
            .iter()
            .find(|r| r.1 == item)
            .map(|r| r.2.clone())
            .unwrap()
    };
    assert_eq!(status("sponsorship.event_impressions"), "ok");
    assert_eq!(status("oldest pending"), "warning");
    assert_eq!(status("pg_cron"), "warning");
    assert_eq!(status("rows in DEFAULT"), "ok");
    // a fact far in the past lands in DEFAULT: the report says so
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.event_impressions (event_id, created_at) VALUES ('{E1}', now() - interval '5 years')"
    ))
    .unwrap();
    assert_eq!(
        scalar_string(
            c,
            "SELECT status FROM sponsorship.health() WHERE item = 'rows in DEFAULT'"
        ),
        "warning"
    );
    // without pg_cron, scheduling is a clear error
    let m = expect_error(c, "SELECT * FROM sponsorship.schedule_jobs()", "55000");
    assert!(m.contains("pg_cron is not installed"), "{m}");
    expect_error(c, "SELECT sponsorship.unschedule_jobs()", "55000");
    // cleanup is bounded and reports what it removed
    c.batch_execute(
        "UPDATE sponsorship.queue_health_log SET checked_at = now() - interval '40 days'",
    )
    .unwrap();
    assert_eq!(
        scalar_i64(
            c,
            "SELECT (sponsorship.run_cleanup(1) ->> 'queue_health_log')::bigint"
        ),
        1
    );
    assert_eq!(
        scalar_i64(
            c,
            "SELECT (sponsorship.run_cleanup() ->> 'queue_health_log')::bigint"
        ),
        1
    );
    assert_eq!(scalar_i64(c, "SELECT sponsorship.prune_cron_history()"), 0);
}

/// The views of SPEC §2 on a fixture small enough to count by hand.
#[test]
fn view_aggregates_match_hand_counts() {
    let mut db = TestDb::with_extension("ops_views");
    let c = &mut db.client;
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.organizations (id, name) VALUES ('{ORG}', 'Org');
         INSERT INTO sponsorship.events (id, org_id, title, start_at, visibility) VALUES
           ('{E1}', '{ORG}', 'Fest', now() + interval '10 days', 'public'),
           ('{E2}', '{ORG}', 'Old Fest', now() - interval '40 days', 'public');
         INSERT INTO sponsorship.sponsors (id, name) VALUES ('{S1}', 'One'), ('{S2}', 'Two');
         INSERT INTO sponsorship.sponsorship_packages (id, event_id, tier, title, price_cents, currency, inventory, sold, expected_reach) VALUES
           ('00000000-0000-0000-0000-0000000000f1', '{E1}', 'gold', 'Gold', 200000, 'USD', 2, 1, 4000),
           ('00000000-0000-0000-0000-0000000000f2', '{E1}', 'bronze', 'Bronze', 30000, 'EUR', 1, 1, NULL),
           ('00000000-0000-0000-0000-0000000000f3', '{E2}', 'silver', 'Silver', 90000, 'USD', 3, 2, 1000);
         INSERT INTO sponsorship.sponsorship_orders (package_id, sponsor_id, event_id, amount_cents, currency, status, stripe_charge_id, application_fee_cents) VALUES
           ('00000000-0000-0000-0000-0000000000f1', '{S1}', '{E1}', 200000, 'USD', 'accepted', 'ch_a', 10000),
           ('00000000-0000-0000-0000-0000000000f2', '{S1}', '{E1}', 30000, 'EUR', 'live', 'ch_b', 1500),
           ('00000000-0000-0000-0000-0000000000f3', '{S1}', '{E2}', 90000, 'USD', 'completed', 'ch_c', 4500),
           ('00000000-0000-0000-0000-0000000000f3', '{S2}', '{E2}', 90000, 'USD', 'completed', 'ch_d', 4500),
           ('00000000-0000-0000-0000-0000000000f1', '{S2}', '{E1}', 200000, 'USD', 'pending', NULL, NULL),
           ('00000000-0000-0000-0000-0000000000f3', '{S2}', '{E2}', 90000, 'USD', 'refunded', 'ch_e', 4500);
         INSERT INTO sponsorship.event_impressions (event_id, sponsor_id, kind, created_at)
         SELECT '{E1}', CASE WHEN g <= 2 THEN '{S1}'::uuid END, CASE WHEN g = 5 THEN 'click' ELSE 'view' END, now() - interval '1 day'
           FROM generate_series(1, 5) g;
         INSERT INTO sponsorship.event_impressions (event_id, kind, created_at) VALUES ('{E2}', 'view', now() - interval '41 days');
         INSERT INTO sponsorship.ticket_analytics (event_id, views, tickets, revenue_cents, currency, created_at) VALUES
           ('{E1}', 20, 0, 0, 'USD', now() - interval '2 days'),
           ('{E1}', 0, 3, 7500, 'USD', now() - interval '2 days'),
           ('{E1}', 0, 1, 2000, 'EUR', now() - interval '2 days');
         INSERT INTO sponsorship.sponsorship_matches (event_id, sponsor_id, score, status) VALUES
           ('{E1}', '{S1}', 0.8, 'accepted'), ('{E1}', '{S2}', 0.5, 'rejected'), ('{E2}', '{S1}', 0.7, 'pending');
         INSERT INTO sponsorship.payout_configurations (org_id, stripe_connect_account_id) VALUES ('{ORG}', 'acct_X');"
    ))
    .unwrap();

    // per event: E1 has 4 views and 1 click (2 of them sponsor placements), 20 ticket-page
    // views, 4 tickets (USD 7,500, EUR 2,000), 2 active packages with 3 units offered and 2
    // sold, 2 paid orders (the pending one is not) from 1 sponsor, USD 2,000.00 + EUR 300.00
    let r = c
        .query_one(
            &format!(
                "SELECT impressions, clicks, sponsor_impressions, ticket_page_views, tickets_sold,
                        ticket_revenue_cents_by_currency, active_packages, package_units_offered, package_units_sold,
                        paid_orders, sponsors, sponsorship_revenue_cents_by_currency
                   FROM sponsorship.v_event_performance_summary WHERE event_id = '{E1}'"
            ),
            &[],
        )
        .unwrap();
    assert_eq!(
        (
            r.get::<_, i64>(0),
            r.get::<_, i64>(1),
            r.get::<_, i64>(2),
            r.get::<_, i64>(3),
            r.get::<_, i64>(4)
        ),
        (4, 1, 2, 20, 4)
    );
    assert_eq!(
        r.get::<_, serde_json::Value>(5),
        serde_json::json!({"USD": 7500, "EUR": 2000})
    );
    assert_eq!(
        (r.get::<_, i64>(6), r.get::<_, i64>(7), r.get::<_, i64>(8)),
        (2, 3, 2)
    );
    assert_eq!((r.get::<_, i64>(9), r.get::<_, i64>(10)), (2, 1));
    assert_eq!(
        r.get::<_, serde_json::Value>(11),
        serde_json::json!({"USD": 200000, "EUR": 30000})
    );
    // E2: two completed paid orders from two sponsors (the refunded one is not revenue)
    let r = c
        .query_one(
            &format!(
                "SELECT paid_orders, sponsors, sponsorship_revenue_cents_by_currency
                   FROM sponsorship.v_event_performance_summary WHERE event_id = '{E2}'"
            ),
            &[],
        )
        .unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(1)), (2, 2));
    assert_eq!(
        r.get::<_, serde_json::Value>(2),
        serde_json::json!({"USD": 180000})
    );

    // package cards: remaining, sold out, cost per thousand expected reach (200000 * 1000 / 4000)
    c.batch_execute("SELECT sponsorship.refresh_package_cards()")
        .unwrap();
    let r = c
        .query_one(
            "SELECT remaining, sold_out, cost_per_thousand_reach_cents, event_views_30d, sponsor_placement_views_30d,
                    event_tickets_30d, strong_sponsor_matches
               FROM sponsorship.v_sponsorship_package_cards WHERE package_id = '00000000-0000-0000-0000-0000000000f1'",
            &[],
        )
        .unwrap();
    assert_eq!(
        (
            r.get::<_, i32>(0),
            r.get::<_, bool>(1),
            r.get::<_, Option<i64>>(2)
        ),
        (1, false, Some(50000))
    );
    // E1's last 30 days: 4 views, 2 of them sponsor placements; 4 tickets; one match >= 0.6
    // (the 0.5 one is rejected anyway)
    assert_eq!(
        (
            r.get::<_, i64>(3),
            r.get::<_, i64>(4),
            r.get::<_, i64>(5),
            r.get::<_, i64>(6)
        ),
        (4, 2, 4, 1)
    );
    assert!(scalar_bool(
        c,
        "SELECT sold_out AND cost_per_thousand_reach_cents IS NULL FROM sponsorship.v_sponsorship_package_cards
          WHERE package_id = '00000000-0000-0000-0000-0000000000f2'"
    ));
    // the figures come from the organizer's private facts: a signed-in stranger and anon see
    // the card without them
    for role in ["authenticated", "anon"] {
        c.batch_execute(&format!("SET ROLE {role}")).unwrap();
        assert!(scalar_bool(
            c,
            "SELECT event_views_30d IS NULL AND strong_sponsor_matches IS NULL AND remaining = 1
               FROM sponsorship.v_sponsorship_package_cards WHERE package_id = '00000000-0000-0000-0000-0000000000f1'"
        ));
        c.batch_execute("RESET ROLE").unwrap();
    }
    // the old event's package shows no views in the last 30 days (its one view is 41 days old)
    assert_eq!(
        scalar_i64(
            c,
            "SELECT event_views_30d FROM sponsorship.v_sponsorship_package_cards WHERE package_id = '00000000-0000-0000-0000-0000000000f3'"
        ),
        0
    );

    // the event marketplace lists events that have not ended: E1, with no package left
    let r = c
        .query_one(
            &format!(
                "SELECT count(*) OVER (), available_packages, cheapest_price_cents, cheapest_currency, sponsorships_sold
                   FROM sponsorship.v_event_marketplace WHERE event_id = '{E1}'"
            ),
            &[],
        )
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), 1);
    assert_eq!(r.get::<_, i64>(1), 1, "Gold has a unit left");
    assert_eq!(
        (r.get::<_, Option<i64>>(2), r.get::<_, Option<String>>(3)),
        (Some(200000), Some("USD".into()))
    );
    assert_eq!(r.get::<_, i64>(4), 2);
    assert_eq!(
        scalar_i64(c, "SELECT count(*) FROM sponsorship.v_event_marketplace"),
        1
    );

    // sponsors: events sponsored counts live and completed paid deals (S1: E1 live, E2 completed)
    let sponsored: Vec<(String, i64)> = c
        .query(
            "SELECT name, events_sponsored FROM sponsorship.v_sponsor_marketplace ORDER BY name",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(sponsored, vec![("One".into(), 2), ("Two".into(), 1)]);

    // the marketplace in one row
    let r = c
        .query_one(
            "SELECT sponsors, organizations, events, upcoming_events, active_packages, orders, orders_by_status,
                    gross_volume_cents_by_currency, platform_fees_cents_by_currency, scored_matches, avg_match_score::text,
                    match_acceptance_rate::text
               FROM sponsorship.v_marketplace_analytics",
            &[],
        )
        .unwrap();
    assert_eq!(
        (
            r.get::<_, i64>(0),
            r.get::<_, i64>(1),
            r.get::<_, i64>(2),
            r.get::<_, i64>(3),
            r.get::<_, i64>(4),
            r.get::<_, i64>(5)
        ),
        (2, 1, 2, 1, 3, 6)
    );
    assert_eq!(
        r.get::<_, serde_json::Value>(6),
        serde_json::json!({"accepted": 1, "live": 1, "completed": 2, "pending": 1, "refunded": 1})
    );
    assert_eq!(
        r.get::<_, serde_json::Value>(7),
        serde_json::json!({"USD": 380000, "EUR": 30000})
    );
    assert_eq!(
        r.get::<_, serde_json::Value>(8),
        serde_json::json!({"USD": 19000, "EUR": 1500})
    );
    assert_eq!(r.get::<_, i64>(9), 3);
    assert_eq!(r.get::<_, String>(10), "0.66667", "(0.8 + 0.5 + 0.7) / 3");
    assert_eq!(
        r.get::<_, String>(11),
        "0.5000",
        "one accepted of two decided"
    );
}

#[test]
fn pg_cron_runs_the_scheduled_jobs() {
    let cluster = OwnCluster::start(
        "opscron",
        "shared_preload_libraries = 'sponsorship, pg_cron'\ncron.database_name = 'ops'\n\
         cron.use_background_workers = on\nsponsorship.worker_database = 'ops'\nsponsorship.worker_count = 0\n\
         sponsorship.payout_worker_enabled = off",
    );
    let mut admin = cluster.connect("postgres");
    admin.batch_execute("CREATE DATABASE ops").unwrap();
    let mut c = cluster.connect("ops");
    c.batch_execute(
        "SET client_min_messages = warning; CREATE EXTENSION pg_cron; CREATE EXTENSION sponsorship CASCADE",
    )
    .unwrap();
    let scheduled: Vec<(String, String)> = c
        .query(
            "SELECT job_name, schedule FROM sponsorship.schedule_jobs() ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(scheduled.len(), 12);
    assert!(scheduled.contains(&("sponsorship:payouts".into(), "*/5 * * * *".into())));
    assert!(scheduled.contains(&("sponsorship:partitions".into(), "30 2 1 * *".into())));
    // idempotent: the same twelve jobs
    c.batch_execute("SELECT count(*) FROM sponsorship.schedule_jobs()")
        .unwrap();
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT count(*) FROM cron.job WHERE jobname LIKE 'sponsorship:%'"
        ),
        12
    );
    // run the queue health job every minute and wait for pg_cron to run it
    c.batch_execute(
        "SELECT cron.alter_job(jobid, schedule := '* * * * *') FROM cron.job WHERE jobname = 'sponsorship:queue-health'",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut status: Option<String> = None;
    while Instant::now() < deadline {
        status = c
            .query_opt(
                "SELECT d.status FROM cron.job_run_details d JOIN cron.job j ON j.jobid = d.jobid
                  WHERE j.jobname = 'sponsorship:queue-health' AND d.status IN ('succeeded', 'failed')
                  ORDER BY d.runid DESC LIMIT 1",
                &[],
            )
            .unwrap()
            .map(|r| r.get(0));
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(status.as_deref(), Some("succeeded"), "{}", cluster.log());
    assert_eq!(
        scalar_i64(&mut c, "SELECT count(*) FROM sponsorship.queue_health_log"),
        2,
        "its result is kept"
    );
    // the health report shows the jobs, to the service role too (cron.job is readable by its
    // jobs' owner only)
    c.batch_execute("SET ROLE service_role").unwrap();
    assert_eq!(
        scalar_string(
            &mut c,
            "SELECT status FROM sponsorship.health() WHERE area = 'jobs' AND item = 'sponsorship:queue-health'"
        ),
        "ok"
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT count(*) FROM sponsorship.health() WHERE area = 'jobs' AND status = 'ok'"
        ),
        12
    );
    // one set of jobs: only the extension's owner schedules them
    expect_error(&mut c, "SELECT * FROM sponsorship.schedule_jobs()", "42501");
    // and the service role can keep partitions (that takes the tables' owner)
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT count(*) FROM sponsorship.create_next_month_partitions(4) WHERE created"
        ),
        2
    );
    c.batch_execute("RESET ROLE").unwrap();
    assert_eq!(
        scalar_i64(&mut c, "SELECT sponsorship.unschedule_jobs()::bigint"),
        12
    );
    assert_eq!(scalar_i64(&mut c, "SELECT count(*) FROM cron.job"), 0);
}

/// pg_cron runs a job as one transaction: a payout pass must not run in one that has written
/// (its process could wait on that transaction's row locks while the transaction waits on it).
#[test]
fn a_payout_pass_refuses_a_transaction_that_has_written() {
    let mut db = TestDb::with_extension("ops_passguard");
    let c = &mut db.client;
    // passes in a transaction that writes nothing are fine, several in a row too
    c.batch_execute(
        "DO $$ BEGIN PERFORM sponsorship.process_payout_queue(1); PERFORM sponsorship.process_payout_queue(1);
                     PERFORM * FROM sponsorship.reconcile_payouts(); END $$",
    )
    .unwrap();
    let m = expect_error(
        c,
        "BEGIN; INSERT INTO sponsorship.organizations (name) VALUES ('x'); SELECT sponsorship.process_payout_queue(1);",
        "25001",
    );
    assert!(m.contains("written nothing"), "{m}");
    c.batch_execute("ROLLBACK").unwrap();
    assert_eq!(
        scalar_i64(c, "SELECT count(*) FROM sponsorship.organizations"),
        0
    );
}
