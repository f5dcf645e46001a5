//! Post-event ROI (SPEC §7b): evaluate_sponsorship_roi() against figures computed by hand on
//! a fixture whose facts straddle a month boundary (two partitions), an event with no
//! impressions, a zero-decimal currency, and the batch form, view and errors.
use sponsorship_integration_tests::*;

const ORG: &str = "00000000-0000-0000-0000-0000000000a0";
const S1: &str = "00000000-0000-0000-0000-0000000000b1";
const S2: &str = "00000000-0000-0000-0000-0000000000b2";
const E1: &str = "00000000-0000-0000-0000-0000000000e1";
const E2: &str = "00000000-0000-0000-0000-0000000000e2";
const E3: &str = "00000000-0000-0000-0000-0000000000e3";
const E4: &str = "00000000-0000-0000-0000-0000000000e4";
/// Activations: A1 (USD, the hand-computed one), A3 (JPY), A4 (no impressions), A5 (draft),
/// A6 (refunded order).
const A1: &str = "00000000-0000-0000-0000-00000000aa01";
const A3: &str = "00000000-0000-0000-0000-00000000aa03";
const A4: &str = "00000000-0000-0000-0000-00000000aa04";
const A5: &str = "00000000-0000-0000-0000-00000000aa05";
const A6: &str = "00000000-0000-0000-0000-00000000aa06";
const S1_EDITOR: &str = "20000000-0000-0000-0000-000000000001";
const S2_OWNER: &str = "20000000-0000-0000-0000-000000000002";
const ORG_VIEWER: &str = "10000000-0000-0000-0000-000000000001";
const STRANGER: &str = "30000000-0000-0000-0000-000000000001";

/// `b` is the start of last month: the window of A1 runs from b - 10 days to b + 5 days,
/// across the partitions of the month before last and of last month.
fn fixture() -> TestDb {
    let mut db = TestDb::with_extension("roi");
    db.client
        .batch_execute(&format!(
            "CREATE TABLE public.fx AS SELECT date_trunc('month', now()) - interval '1 month' AS b;
             INSERT INTO sponsorship.organizations (id, name) VALUES ('{ORG}', 'Organizer');
             INSERT INTO sponsorship.org_members (org_id, user_id, role) VALUES ('{ORG}', '{ORG_VIEWER}', 'viewer');
             INSERT INTO sponsorship.sponsors (id, name) VALUES ('{S1}', 'Brand One'), ('{S2}', 'Brand Two');
             INSERT INTO sponsorship.sponsor_members (sponsor_id, user_id, role) VALUES
               ('{S1}', '{S1_EDITOR}', 'editor'), ('{S2}', '{S2_OWNER}', 'owner');
             INSERT INTO sponsorship.events (id, org_id, title, start_at, end_at)
             SELECT v.id, '{ORG}', v.title, fx.b + v.s, fx.b + v.e
               FROM fx, (VALUES ('{E1}'::uuid, 'Boundary Fest', interval '-3 days', interval '1 day'),
                                ('{E2}'::uuid, 'Other Fest', interval '-3 days', interval '1 day'),
                                ('{E3}'::uuid, 'Tokyo Expo', interval '10 days', interval '11 days'),
                                ('{E4}'::uuid, 'Quiet Meetup', interval '1 day', interval '2 days')) v(id, title, s, e);
             INSERT INTO sponsorship.event_audience_insights (event_id, attendee_count, engagement_score)
             VALUES ('{E1}', 900, 71.5);
             INSERT INTO sponsorship.sponsorship_packages (id, event_id, tier, title, price_cents, currency, expected_reach, inventory) VALUES
               ('00000000-0000-0000-0000-0000000000f1', '{E1}', 'gold', 'Gold Partner', 12345, 'USD', 8, 5),
               ('00000000-0000-0000-0000-0000000000f3', '{E3}', 'title', 'Title Partner', 500000, 'JPY', 10000, 1),
               ('00000000-0000-0000-0000-0000000000f4', '{E4}', 'bronze', 'Bronze Partner', 50000, 'EUR', 100, 3);
             INSERT INTO sponsorship.sponsorship_orders (id, package_id, sponsor_id, event_id, amount_cents, currency, status, stripe_charge_id) VALUES
               ('00000000-0000-0000-0000-00000000cc01', '00000000-0000-0000-0000-0000000000f1', '{S1}', '{E1}', 12345, 'USD', 'completed', 'ch_1'),
               ('00000000-0000-0000-0000-00000000cc03', '00000000-0000-0000-0000-0000000000f3', '{S1}', '{E3}', 500000, 'JPY', 'completed', 'ch_3'),
               ('00000000-0000-0000-0000-00000000cc04', '00000000-0000-0000-0000-0000000000f4', '{S2}', '{E4}', 50000, 'EUR', 'completed', 'ch_4'),
               ('00000000-0000-0000-0000-00000000cc05', '00000000-0000-0000-0000-0000000000f4', '{S1}', '{E4}', 50000, 'EUR', 'accepted', NULL),
               ('00000000-0000-0000-0000-00000000cc06', '00000000-0000-0000-0000-0000000000f1', '{S2}', '{E1}', 12345, 'USD', 'refunded', 'ch_6');
             INSERT INTO sponsorship.event_sponsorships (id, order_id, event_id, sponsor_id, status, started_at, completed_at)
             SELECT v.id, v.o, v.e, v.s, v.st, fx.b + v.sa, fx.b + v.ca
               FROM fx, (VALUES
                 ('{A1}'::uuid, '00000000-0000-0000-0000-00000000cc01'::uuid, '{E1}'::uuid, '{S1}'::uuid, 'completed', interval '-10 days', interval '5 days'),
                 ('{A3}', '00000000-0000-0000-0000-00000000cc03', '{E3}', '{S1}', 'completed', NULL, NULL),
                 ('{A4}', '00000000-0000-0000-0000-00000000cc04', '{E4}', '{S2}', 'completed', NULL, NULL),
                 ('{A5}', '00000000-0000-0000-0000-00000000cc05', '{E4}', '{S1}', 'draft', NULL, NULL),
                 ('{A6}', '00000000-0000-0000-0000-00000000cc06', '{E1}', '{S2}', 'completed', NULL, NULL)
               ) v(id, o, e, s, st, sa, ca);

             -- S1 at E1, inside the window: 7 rows in the month before last, 5 in last month
             INSERT INTO sponsorship.event_impressions (event_id, sponsor_id, kind, viewer_key, dwell_ms, completed, created_at)
             SELECT '{E1}', '{S1}', v.kind, v.viewer, v.dwell, v.completed, fx.b + v.at
               FROM fx, (VALUES
                 ('view', 'v1', 1000, NULL::boolean, interval '-5 days'),
                 ('view', 'v1', 3000, NULL, interval '-5 days 1 hour'),
                 ('view', 'v2', 2000, NULL, interval '-4 days'),
                 ('view', 'v2', NULL, NULL, interval '-4 days 1 hour'),
                 ('view', 'v3', 500, false, interval '-3 days'),
                 ('view', 'v4', 1500, true, interval '-2 days'),
                 ('click', 'v1', NULL, NULL, interval '-1 second'),
                 ('view', 'v3', 2500, true, interval '2 days'),
                 ('view', 'v5', 4000, NULL, interval '2 days 1 hour'),
                 ('view', 'v6', NULL, NULL, interval '2 days 2 hours'),
                 ('view', NULL, 1000, NULL, interval '3 days'),
                 ('engagement', 'v5', 6000, true, interval '4 days')
               ) v(kind, viewer, dwell, completed, at);
             -- not counted: S1 at E1 before and after the window, another sponsor, another event
             INSERT INTO sponsorship.event_impressions (event_id, sponsor_id, kind, viewer_key, created_at)
             SELECT v.e, v.s, 'view', 'x' || g, fx.b + v.at
               FROM fx, generate_series(1, 3) g,
                    (VALUES ('{E1}'::uuid, '{S1}'::uuid, interval '-12 days'), ('{E1}', '{S1}', interval '6 days'),
                            ('{E1}', '{S2}', interval '1 day'), ('{E2}', '{S1}', interval '1 day'),
                            ('{E1}', NULL, interval '1 day')) v(e, s, at);
             -- tickets S1 referred at E1: views, a USD sale and a EUR sale; then rows not counted
             INSERT INTO sponsorship.ticket_analytics (event_id, sponsor_id, channel, views, tickets, revenue_cents, currency, created_at)
             SELECT v.e, v.s, 'sponsor', v.views, v.tickets, v.revenue, v.cur, fx.b + v.at
               FROM fx, (VALUES
                 ('{E1}'::uuid, '{S1}'::uuid, 40, 0, 0, 'USD', interval '-6 days'),
                 ('{E1}', '{S1}', 10, 3, 4500, 'USD', interval '1 day'),
                 ('{E1}', '{S1}', 0, 1, 2000, 'EUR', interval '2 days'),
                 ('{E1}', '{S1}', 99, 9, 9999, 'USD', interval '-11 days'),
                 ('{E1}', '{S2}', 99, 9, 9999, 'USD', interval '1 day'),
                 ('{E3}', '{S1}', 0, 2, 6000, 'JPY', interval '10 days')
               ) v(e, s, views, tickets, revenue, cur, at);
             -- S1 at E3 (JPY): 12,345 views without viewer keys
             INSERT INTO sponsorship.event_impressions (event_id, sponsor_id, kind, created_at)
             SELECT '{E3}', '{S1}', 'view', fx.b + interval '9 days' FROM fx, generate_series(1, 12345);"
        ))
        .unwrap();
    db
}

fn summary(c: &mut Client, activation: &str) -> serde_json::Value {
    c.query_one(
        "SELECT sponsorship.evaluate_sponsorship_roi($1::text::uuid)",
        &[&activation],
    )
    .unwrap_or_else(|e| panic!("evaluate {activation}: {e:?}"))
    .get::<_, serde_json::Value>(0)
}


#[test]
fn roi_figures_match_hand_computed_values_across_two_month_partitions() {
    let mut db = fixture();
    let c = &mut db.client;
    let s = summary(c, A1);
    // Counted by hand from the fixture: 10 views, 1 click, 1 engagement; six identified
    // viewers (v1..v6) and one view without a key, which counts as a person (reach 7, an
    // upper bound); engaged: v1 (click), v3 and v4 (completed), v5 (engagement); dwell
    // 21,500 ms over 9 rows; 3 completions of 4 measured.
    let expect = serde_json::json!({
        "impressions": 10, "clicks": 1, "engagements": 1,
        "unique_reach": 7, "identified_reach": 6, "reach_basis": "mixed", "unattributed_impressions": 1,
        "expected_reach": 8,
        "reach_delivered_ratio": 0.875,           // 7 / 8
        "impressions_per_person": 1.4286,         // 10 / 7
        "click_through_rate": 0.1,
        "engaged_attendees": 4, "engagement_rate": 0.6667,
        "avg_dwell_ms": 2389,                     // 21500 / 9 = 2388.9
        "completions": 3, "completion_rate": 0.75,
        "ticket_views": 50, "tickets_sold": 4, "ticket_conversion_rate": 0.08,
        "ticket_revenue_cents_by_currency": {"USD": 4500, "EUR": 2000},
        "event_attendees": 900, "event_engagement_score": 71.5,
        "currency": "USD", "currency_exponent": 2, "cost_cents": 12345,
        "cpm_cents": 1234500,                     // 12345 * 1000 / 10
        "cost_per_engaged_attendee_cents": 3086,  // 12345 / 4 = 3086.25
        "cost_per_thousand_reach_cents": 1763571, // 12345 * 1000 / 7 = 1763571.4
        "verdict": "nearly_met",
        "verdict_reason": "reached 7 people (an upper bound: 1 view without a viewer key count as people) against 8 expected (87.5%)",
        "package_title": "Gold Partner", "tier": "gold", "event_title": "Boundary Fest",
    });
    for (k, v) in expect.as_object().unwrap() {
        assert_eq!(&s[k], v, "roi_summary.{k} in {s:#}");
    }
    // stored, evaluated, with the window it used
    let row = c
        .query_one(
            "SELECT es.status, es.roi_summary, es.evaluated_at IS NOT NULL,
                    (es.roi_summary ->> 'window_from')::timestamptz = fx.b - interval '10 days',
                    (es.roi_summary ->> 'window_to')::timestamptz = fx.b + interval '5 days'
               FROM sponsorship.event_sponsorships es, fx WHERE es.id = $1::text::uuid",
            &[&A1],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "evaluated");
    assert_eq!(row.get::<_, serde_json::Value>(1), s);
    assert!(row.get::<_, bool>(2) && row.get::<_, bool>(3) && row.get::<_, bool>(4));

    // re-evaluating after a late fact arrives counts it
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.event_impressions (event_id, sponsor_id, kind, viewer_key, created_at)
         SELECT '{E1}', '{S1}', 'view', 'v7', b + interval '1 day' FROM fx"
    ))
    .unwrap();
    let again = summary(c, A1);
    assert_eq!(again["unique_reach"], 8);
    assert_eq!(again["identified_reach"], 7);
    assert_eq!(again["verdict"], "met");
}

#[test]
fn roi_scans_only_the_partitions_of_the_window() {
    let db = fixture();
    let (mut c, notices) = db.connect_collecting_notices();
    c.batch_execute(
        "LOAD 'auto_explain';
         SET auto_explain.log_min_duration = 0;
         SET auto_explain.log_nested_statements = on;
         SET auto_explain.log_level = notice;
         SET client_min_messages = notice;",
    )
    .unwrap();
    summary(&mut c, A1);
    c.batch_execute("SET auto_explain.log_min_duration = -1")
        .unwrap();
    let (before_last, last): (String, String) = {
        let r = c
            .query_one(
                "SELECT to_char(b - interval '1 month', '\"y\"YYYY\"m\"MM'), to_char(b, '\"y\"YYYY\"m\"MM') FROM fx",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    let plans = notices.lock().unwrap().clone();
    let impressions_plan = plans
        .iter()
        .find(|p| {
            p.contains("FROM sponsorship.event_impressions x") || p.contains("event_impressions x")
        })
        .unwrap_or_else(|| {
            panic!(
                "no plan of the impressions query among {} notices:\n{}",
                plans.len(),
                plans.join("\n---\n")
            )
        });
    let scanned: Vec<&str> = impressions_plan
        .split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
        .filter(|w| {
            w.starts_with("event_impressions_") && !w.ends_with("_idx") && !w.contains("_idx")
        })
        .collect();
    let mut partitions: Vec<&str> = scanned.clone();
    partitions.sort();
    partitions.dedup();
    assert_eq!(
        partitions,
        vec![
            format!("event_impressions_{before_last}"),
            format!("event_impressions_{last}")
        ],
        "the impressions query should scan the two months of the window only:\n{impressions_plan}"
    );
    let tickets_plan = plans
        .iter()
        .find(|p| p.contains("ticket_analytics y"))
        .expect("a plan of the tickets query");
    assert!(
        !tickets_plan.contains("ticket_analytics_default"),
        "{tickets_plan}"
    );
}

#[test]
fn an_event_with_no_impressions_is_no_delivery() {
    let mut db = fixture();
    let s = summary(&mut db.client, A4);
    assert_eq!(s["verdict"], "no_delivery");
    assert_eq!(s["impressions"], 0);
    assert_eq!(s["unique_reach"], 0);
    assert_eq!(s["reach_basis"], "none");
    assert_eq!(s["reach_delivered_ratio"], 0.0);
    for k in [
        "cpm_cents",
        "cost_per_engaged_attendee_cents",
        "cost_per_thousand_reach_cents",
        "click_through_rate",
        "avg_dwell_ms",
        "completion_rate",
        "ticket_conversion_rate",
        "engaged_attendees",
        "event_attendees",
    ] {
        assert!(s[k].is_null(), "{k} should be null without facts: {s:#}");
    }
    assert_eq!(s["currency"], "EUR");
    assert_eq!(s["cost_cents"], 50000);
    assert_eq!(s["ticket_revenue_cents_by_currency"], serde_json::json!({}));
}

#[test]
fn a_zero_decimal_currency_costs_in_whole_yen() {
    let mut db = fixture();
    let s = summary(&mut db.client, A3);
    assert_eq!(s["currency"], "JPY");
    assert_eq!(s["currency_exponent"], 0);
    assert_eq!(s["cost_cents"], 500000);
    // ¥500,000 for 12,345 impressions: 40,502.2 yen per thousand
    assert_eq!(s["cpm_cents"], 40502);
    // no viewer keys: impressions stand in for reach, as an upper bound
    assert_eq!(s["reach_basis"], "impressions");
    assert_eq!(s["unique_reach"], 12345);
    assert_eq!(s["verdict"], "exceeded");
    assert!(s["verdict_reason"]
        .as_str()
        .unwrap()
        .contains("upper bound"));
    assert!(s["engaged_attendees"].is_null());
    assert_eq!(s["tickets_sold"], 2);
    assert_eq!(
        s["ticket_revenue_cents_by_currency"],
        serde_json::json!({"JPY": 6000})
    );
    assert!(
        s["ticket_conversion_rate"].is_null(),
        "no ticket views were recorded"
    );
    // the window fell back to the event's dates: 30 days before its start to 7 after its end
    assert_eq!(
        scalar_bool(
            &mut db.client,
            &format!(
                "SELECT (roi_summary ->> 'window_from')::timestamptz = fx.b + interval '10 days' - interval '30 days'
                    AND (roi_summary ->> 'window_to')::timestamptz = fx.b + interval '11 days' + interval '7 days'
                   FROM sponsorship.event_sponsorships, fx WHERE id = '{A3}'"
            )
        ),
        true
    );
}

#[test]
fn the_batch_evaluates_each_completed_activation_once() {
    let mut db = fixture();
    let (mut w, warnings) = db.connect_collecting_notices();
    let c = &mut db.client;
    expect_error(
        c,
        "SELECT sponsorship.evaluate_completed_sponsorships(0)",
        "22023",
    );
    expect_error(
        c,
        "SELECT sponsorship.evaluate_completed_sponsorships(NULL)",
        "22023",
    );
    // a paid, completed activation whose order's currency the platform does not know: it
    // fails alone, with a warning, and does not stop the others
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.sponsorship_orders (id, package_id, sponsor_id, event_id, amount_cents, currency, status, stripe_charge_id)
         VALUES ('00000000-0000-0000-0000-00000000cc08', '00000000-0000-0000-0000-0000000000f1', '{S2}', '{E1}', 100, 'ABC', 'completed', 'ch_8');
         INSERT INTO sponsorship.event_sponsorships (id, order_id, event_id, sponsor_id, status)
         VALUES ('00000000-0000-0000-0000-00000000aa08', '00000000-0000-0000-0000-00000000cc08', '{E1}', '{S2}', 'completed');"
    ))
    .unwrap();
    let batch = "SELECT sponsorship.evaluate_completed_sponsorships()::bigint";
    // oldest completion first (A1), then those without one, by id (A3, A4, the bad one)
    assert_eq!(
        scalar_i64(
            c,
            "SELECT sponsorship.evaluate_completed_sponsorships(2)::bigint"
        ),
        2
    );
    // A5 is a draft and A6's order was refunded: not candidates
    assert_eq!(scalar_i64(&mut w, batch), 1);
    let warned = warnings.lock().unwrap().clone();
    assert!(
        warned
            .iter()
            .any(|m| m.contains("00000000-0000-0000-0000-00000000aa08") && m.contains("22023")),
        "{warned:?}"
    );
    assert_eq!(scalar_i64(&mut w, batch), 0);
    assert_eq!(
        scalar_string(
            c,
            "SELECT status FROM sponsorship.event_sponsorships WHERE id = '00000000-0000-0000-0000-00000000aa08'"
        ),
        "completed"
    );
    let evaluated: Vec<String> = c
        .query("SELECT id::text FROM sponsorship.event_sponsorships WHERE status = 'evaluated' ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(evaluated, vec![A1, A3, A4]);
    // API users may not run the batch
    act_as(c, "authenticated", Some(S1_EDITOR));
    expect_error(
        c,
        "SELECT sponsorship.evaluate_completed_sponsorships()",
        "42501",
    );
}

#[test]
fn bad_calls_are_refused_and_change_nothing() {
    let mut db = fixture();
    let c = &mut db.client;
    let evaluate = |id: &str| format!("SELECT sponsorship.evaluate_sponsorship_roi('{id}')");
    expect_error(
        c,
        "SELECT sponsorship.evaluate_sponsorship_roi(NULL)",
        "22004",
    );
    expect_error(
        c,
        "SELECT sponsorship.evaluate_sponsorship_roi(gen_random_uuid())",
        "P0002",
    );
    let m = expect_error(c, &evaluate(A5), "55000");
    assert!(m.contains("draft"), "{m}");
    let m = expect_error(c, &evaluate(A6), "55000");
    assert!(m.contains("refunded"), "{m}");
    // 'evaluated' needs a summary, which only the function writes
    expect_error(
        c,
        &format!(
            "UPDATE sponsorship.event_sponsorships SET status = 'evaluated' WHERE id = '{A1}'"
        ),
        "23514",
    );
    // an activation cannot name another event or sponsor than its order's
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.sponsorship_orders (id, package_id, sponsor_id, event_id, amount_cents)
         VALUES ('00000000-0000-0000-0000-00000000cc07', '00000000-0000-0000-0000-0000000000f1', '{S1}', '{E1}', 12345)"
    ))
    .unwrap();
    for (event, sponsor) in [(E2, S1), (E1, S2)] {
        expect_error(
            c,
            &format!(
                "INSERT INTO sponsorship.event_sponsorships (order_id, event_id, sponsor_id)
                 VALUES ('00000000-0000-0000-0000-00000000cc07', '{event}', '{sponsor}')"
            ),
            "23503",
        );
    }
    // an activation of an order nobody paid for (that pending one) is not evaluated
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.event_sponsorships (id, order_id, event_id, sponsor_id, status)
         VALUES ('00000000-0000-0000-0000-00000000aa07', '00000000-0000-0000-0000-00000000cc07', '{E1}', '{S1}', 'completed')"
    ))
    .unwrap();
    let m = expect_error(
        c,
        &evaluate("00000000-0000-0000-0000-00000000aa07"),
        "55000",
    );
    assert!(m.contains("only a paid purchase"), "{m}");
    // the figures' input is checked too
    expect_error(
        c,
        "SELECT sponsorship.roi_assess('{\"currency\": \"USD\"}')",
        "22023",
    );
    expect_error(
        c,
        "SELECT sponsorship.roi_assess('{\"currency\": \"QQQ\", \"cost_cents\": 1}')",
        "22023",
    );
    // who may ask: a stranger and an organizer's viewer may not; anon may not call it at all
    for (role, user) in [
        ("authenticated", Some(STRANGER)),
        ("authenticated", Some(ORG_VIEWER)),
        ("anon", None),
    ] {
        act_as(c, role, user);
        expect_error(c, &evaluate(A1), "42501");
    }
    // a party may not write the summary, mark the activation evaluated, move it back or
    // re-time a completed one
    act_as(c, "authenticated", Some(S1_EDITOR));
    expect_error(
        c,
        &format!(
            "UPDATE sponsorship.event_sponsorships SET roi_summary = '{{}}' WHERE id = '{A1}'"
        ),
        "42501",
    );
    for update in [
        "status = 'evaluated'",
        "status = 'live'",
        "completed_at = completed_at + interval '30 days'",
        "started_at = started_at - interval '30 days'",
    ] {
        expect_error(
            c,
            &format!("UPDATE sponsorship.event_sponsorships SET {update} WHERE id = '{A1}'"),
            "55000",
        );
    }
    c.batch_execute("RESET ROLE").unwrap();
    assert_eq!(
        scalar_i64(
            c,
            &format!(
                "SELECT count(*) FROM sponsorship.event_sponsorships
                  WHERE roi_summary IS NOT NULL OR status = 'evaluated'
                     OR (id = '{A1}' AND (status <> 'completed' OR completed_at <> (SELECT b + interval '5 days' FROM fx)))"
            )
        ),
        0,
        "nothing was written by the refused calls"
    );
    // the sponsor's editor may evaluate; and then cannot take the evaluation back
    act_as(c, "authenticated", Some(S1_EDITOR));
    assert_eq!(summary(c, A1)["verdict"], "nearly_met");
    for status in ["completed", "live", "draft"] {
        expect_error(
            c,
            &format!(
                "UPDATE sponsorship.event_sponsorships SET status = '{status}' WHERE id = '{A1}'"
            ),
            "55000",
        );
    }
    // re-evaluating is allowed
    assert_eq!(summary(c, A1)["verdict"], "nearly_met");
}

#[test]
fn sponsors_see_their_own_roi_and_the_marketplace_shows_the_record() {
    let mut db = fixture();
    let c = &mut db.client;
    for a in [A1, A3, A4] {
        summary(c, a);
    }
    act_as(c, "authenticated", Some(S1_EDITOR));
    let rows = c
        .query(
            "SELECT event_sponsorship_id::text, verdict, cpm_cents, unique_reach, currency
               FROM sponsorship.v_sponsorship_roi ORDER BY event_sponsorship_id",
            &[],
        )
        .unwrap();
    let seen: Vec<(String, String, Option<i64>, i64, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                A1.to_string(),
                "nearly_met".to_string(),
                Some(1234500),
                7,
                "USD".to_string()
            ),
            (
                A3.to_string(),
                "exceeded".to_string(),
                Some(40502),
                12345,
                "JPY".to_string()
            ),
        ]
    );
    act_as(c, "authenticated", Some(S2_OWNER));
    assert_eq!(
        scalar_i64(c, "SELECT count(*) FROM sponsorship.v_sponsorship_roi"),
        1
    );
    act_as(c, "authenticated", Some(STRANGER));
    assert_eq!(
        scalar_i64(c, "SELECT count(*) FROM sponsorship.v_sponsorship_roi"),
        0
    );
    act_as(c, "anon", None);
    expect_error(c, "SELECT * FROM sponsorship.v_sponsorship_roi", "42501");
    // the public record: with two evaluations, S1's figures would be one deal's: hidden
    let record = |c: &mut Client| -> (i64, Option<String>, Option<String>) {
        let r = c
            .query_one(
                &format!(
                    "SELECT evaluated_sponsorships, median_reach_delivered_ratio::text, expectation_met_share::text
                       FROM sponsorship.v_sponsor_marketplace WHERE sponsor_id = '{S1}'"
                ),
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(record(c), (2, None, None));
    // a third (A5, paid and completed, no impressions: ratio 0): ratios 0, 0.875, 1.2345,
    // median 0.875; one of the three met its expectation
    c.batch_execute(&format!(
        "RESET ROLE;
         UPDATE sponsorship.sponsorship_orders SET status = 'completed', stripe_charge_id = 'ch_5'
          WHERE id = '00000000-0000-0000-0000-00000000cc05';
         UPDATE sponsorship.event_sponsorships SET status = 'completed' WHERE id = '{A5}';"
    ))
    .unwrap();
    assert_eq!(summary(c, A5)["verdict"], "no_delivery");
    act_as(c, "anon", None);
    assert_eq!(record(c), (3, Some("0.88".into()), Some("0.33".into())));
}

#[test]
fn status_changes_stamp_the_activation_window() {
    let mut db = fixture();
    let c = &mut db.client;
    c.batch_execute(&format!(
        "UPDATE sponsorship.event_sponsorships SET status = 'live' WHERE id = '{A5}';"
    ))
    .unwrap();
    assert!(scalar_bool(
        c,
        &format!(
            "SELECT started_at BETWEEN now() - interval '1 minute' AND now() AND completed_at IS NULL
               FROM sponsorship.event_sponsorships WHERE id = '{A5}'"
        )
    ));
    c.batch_execute(&format!(
        "UPDATE sponsorship.event_sponsorships SET status = 'completed' WHERE id = '{A5}';"
    ))
    .unwrap();
    assert!(scalar_bool(
        c,
        &format!("SELECT completed_at >= started_at FROM sponsorship.event_sponsorships WHERE id = '{A5}'")
    ));
    // a time given with the change is kept
    c.batch_execute(&format!(
        "UPDATE sponsorship.event_sponsorships SET status = 'live', started_at = NULL, completed_at = NULL WHERE id = '{A4}';
         UPDATE sponsorship.event_sponsorships SET status = 'completed', completed_at = '2031-01-01' WHERE id = '{A4}';"
    ))
    .unwrap();
    assert!(scalar_bool(
        c,
        &format!("SELECT completed_at = '2031-01-01' FROM sponsorship.event_sponsorships WHERE id = '{A4}'")
    ));
}
