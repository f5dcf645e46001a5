//! CHECKs and keys reject bad rows with a clear error naming the rule.
use sponsorship_integration_tests::*;

const SETUP: &str = "
    INSERT INTO sponsorship.organizations (id, name) VALUES
        ('00000000-0000-0000-0000-00000000000a', 'Org A'), ('00000000-0000-0000-0000-00000000000b', 'Org B');
    INSERT INTO sponsorship.events (id, org_id, title, start_at) VALUES
        ('00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-00000000000a', 'Event 1', now()),
        ('00000000-0000-0000-0000-0000000000e2', '00000000-0000-0000-0000-00000000000b', 'Event 2', now());
    INSERT INTO sponsorship.sponsors (id, name) VALUES ('00000000-0000-0000-0000-0000000000b1', 'Brand');
    INSERT INTO sponsorship.sponsorship_packages (id, event_id, title, price_cents) VALUES
        ('00000000-0000-0000-0000-0000000000f1', '00000000-0000-0000-0000-0000000000e1', 'Gold', 100000);";

fn rejected(db: &mut TestDb, sql: &str, state: &str, names: &str) {
    let message = expect_error(&mut db.client, sql, state);
    assert!(
        message.contains(names),
        "error for `{sql}` should name `{names}`, got: {message}"
    );
}

#[test]
fn bad_rows_are_rejected_with_the_rule_they_break() {
    let mut db = TestDb::with_extension("checks");
    db.client.batch_execute(SETUP).unwrap();
    let e1 = "'00000000-0000-0000-0000-0000000000e1'";
    let b1 = "'00000000-0000-0000-0000-0000000000b1'";

    rejected(&mut db, "INSERT INTO sponsorship.sponsor_profiles (sponsor_id, annual_budget_cents) VALUES ('00000000-0000-0000-0000-0000000000b1', -1)",
             "23514", "sponsor_profiles_annual_budget_cents_check");
    rejected(&mut db, "INSERT INTO sponsorship.sponsor_profiles (sponsor_id, currency) VALUES ('00000000-0000-0000-0000-0000000000b1', 'usd')",
             "23514", "sponsor_profiles_currency_check");
    rejected(&mut db, &format!("INSERT INTO sponsorship.events (org_id, title, start_at, visibility) VALUES ('00000000-0000-0000-0000-00000000000a', 'X', now(), 'secret')"),
             "23514", "events_visibility_check");
    rejected(&mut db, "INSERT INTO sponsorship.events (org_id, title, start_at, end_at) VALUES ('00000000-0000-0000-0000-00000000000a', 'X', now(), now() - interval '1 day')",
             "23514", "events_end_after_start");
    rejected(&mut db, "INSERT INTO sponsorship.events (org_id, title, start_at, lat, lng) VALUES ('00000000-0000-0000-0000-00000000000a', 'X', now(), 91, 0)",
             "23514", "events_lat_check");
    rejected(&mut db, "INSERT INTO sponsorship.events (org_id, title, start_at) VALUES ('00000000-0000-0000-0000-00000000000a', '   ', now())",
             "23514", "events_title_check");
    rejected(&mut db, &format!("INSERT INTO sponsorship.event_audience_insights (event_id, engagement_score) VALUES ({e1}, 150)"),
             "23514", "event_audience_insights_engagement_score_check");
    rejected(&mut db, &format!("INSERT INTO sponsorship.event_audience_insights (event_id, sentiment_score) VALUES ({e1}, -1.5)"),
             "23514", "event_audience_insights_sentiment_score_check");
    rejected(&mut db, &format!("INSERT INTO sponsorship.event_audience_insights (event_id, age_segments) VALUES ({e1}, '{{\"18-24\": 0.8, \"25-34\": 0.7}}')"),
             "23514", "event_audience_insights_age_segments_check");
    rejected(&mut db, &format!("INSERT INTO sponsorship.event_audience_insights (event_id, geo_distribution) VALUES ({e1}, '{{\"Austin\": \"most\"}}')"),
             "23514", "event_audience_insights_geo_distribution_check");
    rejected(&mut db, &format!("INSERT INTO sponsorship.event_audience_insights (event_id, geo_distribution) VALUES ({e1}, '[0.5]')"),
             "23514", "event_audience_insights_geo_distribution_check");
    rejected(&mut db, &format!("INSERT INTO sponsorship.sponsorship_packages (event_id, title, price_cents, inventory, sold) VALUES ({e1}, 'P', 100, 2, 3)"),
             "23514", "sponsorship_packages_not_oversold");
    rejected(&mut db, &format!("INSERT INTO sponsorship.sponsorship_packages (event_id, title, price_cents) VALUES ({e1}, 'P', -100)"),
             "23514", "sponsorship_packages_price_cents_check");
    // an order for a package of another event
    rejected(&mut db, &format!("INSERT INTO sponsorship.sponsorship_orders (package_id, sponsor_id, event_id, amount_cents) VALUES ('00000000-0000-0000-0000-0000000000f1', {b1}, '00000000-0000-0000-0000-0000000000e2', 100000)"),
             "23503", "sponsorship_orders_package_of_event");
    rejected(&mut db, &format!("INSERT INTO sponsorship.sponsorship_orders (package_id, sponsor_id, event_id, amount_cents, application_fee_cents) VALUES ('00000000-0000-0000-0000-0000000000f1', {b1}, {e1}, 1000, 1001)"),
             "23514", "sponsorship_orders_fee_within_amount");
    rejected(&mut db, &format!("INSERT INTO sponsorship.sponsorship_orders (package_id, sponsor_id, event_id, amount_cents, status) VALUES ('00000000-0000-0000-0000-0000000000f1', {b1}, {e1}, 1000, 'paid')"),
             "23514", "sponsorship_orders_status_check");
    rejected(&mut db, "INSERT INTO sponsorship.payout_configurations (org_id, platform_fee_bps) VALUES ('00000000-0000-0000-0000-00000000000a', 10001)",
             "23514", "payout_configurations_platform_fee_bps_check");
    rejected(&mut db, "INSERT INTO sponsorship.payout_configurations (org_id, stripe_connect_account_id) VALUES ('00000000-0000-0000-0000-00000000000a', 'sk_live_oops')",
             "23514", "payout_configurations_stripe_connect_account_id_check");
    rejected(&mut db, "INSERT INTO sponsorship.scoring_weights (version, budget_fit, audience_overlap, geo_fit, engagement_quality, objectives_similarity) VALUES (2, 0.5, 0.5, 0.5, 0, 0)",
             "23514", "scoring_weights_sum_to_one");
    rejected(&mut db, &format!("INSERT INTO sponsorship.sponsorship_matches (event_id, sponsor_id, score) VALUES ({e1}, {b1}, 1.5)"),
             "23514", "sponsorship_matches_score_check");
    rejected(
        &mut db,
        "INSERT INTO sponsorship.fit_recalc_queue (reason) VALUES ('nothing named')",
        "23514",
        "fit_recalc_queue_names_something",
    );
    rejected(&mut db, "INSERT INTO sponsorship.org_members (org_id, user_id, role) VALUES ('00000000-0000-0000-0000-00000000000a', gen_random_uuid(), 'superuser')",
             "23514", "org_members_role_check");
    // a second active weights version
    rejected(&mut db, "INSERT INTO sponsorship.scoring_weights (version, budget_fit, audience_overlap, geo_fit, engagement_quality, objectives_similarity, is_active) VALUES (2, 0.2, 0.2, 0.2, 0.2, 0.2, true)",
             "23505", "scoring_weights_one_active_idx");
}

#[test]
fn the_recalc_queue_holds_one_pending_row_per_pair() {
    let mut db = TestDb::with_extension("queuepair");
    db.client.batch_execute(SETUP).unwrap();
    db.client
        .batch_execute(
            "UPDATE sponsorship.fit_recalc_queue SET processed_at = now();
             INSERT INTO sponsorship.fit_recalc_queue (event_id) VALUES ('00000000-0000-0000-0000-0000000000e1');
             INSERT INTO sponsorship.fit_recalc_queue (event_id, sponsor_id)
             VALUES ('00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-0000000000b1');",
        )
        .unwrap();
    // a second event-only row for the same event is a duplicate (NULL sponsor counts as equal)
    expect_error(
        &mut db.client,
        "INSERT INTO sponsorship.fit_recalc_queue (event_id) VALUES ('00000000-0000-0000-0000-0000000000e1')",
        "23505",
    );
    // once processed, the pair may be queued again
    db.client
        .batch_execute(
            "UPDATE sponsorship.fit_recalc_queue SET processed_at = now() WHERE sponsor_id IS NULL;
             INSERT INTO sponsorship.fit_recalc_queue (event_id) VALUES ('00000000-0000-0000-0000-0000000000e1');",
        )
        .unwrap();
}

#[test]
fn well_formed_rows_are_accepted() {
    let mut db = TestDb::with_extension("goodrows");
    db.client.batch_execute(SETUP).unwrap();
    db.client
        .batch_execute(
            "INSERT INTO sponsorship.event_audience_insights
                 (event_id, attendee_count, geo_distribution, age_segments, engagement_score, ticket_conversion_rate,
                  social_mentions, sentiment_score)
             VALUES ('00000000-0000-0000-0000-0000000000e1', 1200, '{\"Austin\": 0.7, \"Dallas\": 0.3}',
                     '{\"18-24\": 0.25, \"25-34\": 0.5, \"35-44\": 0.25}', 72.5, 0.08, 340, 0.6);
             INSERT INTO sponsorship.sponsor_profiles (sponsor_id, annual_budget_cents, currency, target_audience, regions)
             VALUES ('00000000-0000-0000-0000-0000000000b1', 5000000, 'EUR',
                     '{\"age_segments\": {\"25-34\": 0.6, \"35-44\": 0.4}, \"interests\": [\"music\"]}', ARRAY['global']);",
        )
        .unwrap();
}
