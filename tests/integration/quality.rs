//! mv_event_quality_scores: every component and the final score stay in [0,1], tiers follow
//! the thresholds, extremes land where the formula says, refreshes are logged.
use sponsorship_integration_tests::*;

#[test]
fn quality_scores_stay_in_range_and_tiers_follow_thresholds() {
    let mut db = TestDb::with_extension("quality");
    db.client
        .batch_execute(
            "INSERT INTO sponsorship.organizations (id, name) VALUES ('00000000-0000-0000-0000-00000000000a', 'Org');
             -- the best possible event: everything measured at or beyond saturation
             INSERT INTO sponsorship.events (id, org_id, title, description, category, city, start_at) VALUES
               ('00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-00000000000a', 'Best',
                repeat('A festival of light and sound. ', 40), 'music', 'Austin', now() + interval '10 days');
             INSERT INTO sponsorship.event_audience_insights
                 (event_id, attendee_count, engagement_score, ticket_conversion_rate, social_mentions, sentiment_score)
             VALUES ('00000000-0000-0000-0000-0000000000e1', 2000000000, 100, 1, 2000000000, 1);
             -- a bare listing held a year ago with nothing measured
             INSERT INTO sponsorship.events (id, org_id, title, start_at) VALUES
               ('00000000-0000-0000-0000-0000000000e2', '00000000-0000-0000-0000-00000000000a', 'Bare', now() - interval '365 days');
             -- 200 random events with random (valid) insights
             INSERT INTO sponsorship.events (org_id, title, description, category, city, start_at)
             SELECT '00000000-0000-0000-0000-00000000000a', 'Random ' || g, repeat('x', (random() * 900)::int),
                    (ARRAY['music','tech','sports',NULL])[1 + (g % 4)], CASE WHEN g % 3 = 0 THEN NULL ELSE 'Paris' END,
                    now() + ((random() * 800 - 400) || ' days')::interval
               FROM generate_series(1, 200) g;
             INSERT INTO sponsorship.event_audience_insights
                 (event_id, attendee_count, engagement_score, ticket_conversion_rate, social_mentions, sentiment_score)
             SELECT id, (random() * 100000)::int, round((random() * 100)::numeric, 3), round(random()::numeric, 6),
                    (random() * 50000)::int, round((random() * 2 - 1)::numeric, 3)
               FROM sponsorship.events WHERE title LIKE 'Random %' AND random() < 0.8;",
        )
        .unwrap();
    let rows = scalar_i64(
        &mut db.client,
        "SELECT sponsorship.refresh_event_quality_scores()",
    );
    assert_eq!(rows, 202);

    let out_of_range = scalar_i64(
        &mut db.client,
        "SELECT count(*) FROM sponsorship.mv_event_quality_scores
          WHERE NOT (engagement_rate BETWEEN 0 AND 1 AND conversion BETWEEN 0 AND 1 AND recency BETWEEN 0 AND 1
                 AND content BETWEEN 0 AND 1 AND category_popularity BETWEEN 0 AND 1 AND volume BETWEEN 0 AND 1
                 AND social_proof BETWEEN 0 AND 1 AND sentiment BETWEEN 0 AND 1
                 AND final_quality_score BETWEEN 0 AND 1)",
    );
    assert_eq!(
        out_of_range, 0,
        "every component and final score must be in [0,1]"
    );

    let wrong_tier = scalar_i64(
        &mut db.client,
        "SELECT count(*) FROM sponsorship.mv_event_quality_scores
          WHERE quality_tier IS DISTINCT FROM CASE WHEN final_quality_score >= 0.8 THEN 'premium'
                                                   WHEN final_quality_score >= 0.6 THEN 'high'
                                                   WHEN final_quality_score >= 0.4 THEN 'medium'
                                                   ELSE 'low' END",
    );
    assert_eq!(
        wrong_tier, 0,
        "tiers follow premium >= 0.8, high >= 0.6, medium >= 0.4"
    );

    let best = db
        .client
        .query_one(
            "SELECT final_quality_score, quality_tier FROM sponsorship.mv_event_quality_scores
              WHERE event_id = '00000000-0000-0000-0000-0000000000e1'",
            &[],
        )
        .unwrap();
    let (best_score, best_tier): (f64, String) = (best.get(0), best.get(1));
    // category_popularity: music holds 1 + 50 of 202 events, tech/sports 50 each -> music is the largest.
    assert!(
        (best_score - 1.0).abs() < 1e-9,
        "best event scores {best_score}"
    );
    assert_eq!(best_tier, "premium");

    let bare = db
        .client
        .query_one(
            "SELECT final_quality_score, quality_tier, has_insights, recency FROM sponsorship.mv_event_quality_scores
              WHERE event_id = '00000000-0000-0000-0000-0000000000e2'",
            &[],
        )
        .unwrap();
    let (bare_score, bare_tier, has_insights, recency): (f64, String, bool, f64) =
        (bare.get(0), bare.get(1), bare.get(2), bare.get(3));
    assert!(!has_insights);
    // 365 days after the start with a 90-day half-life
    assert!(
        (recency - 0.5f64.powf(365.0 / 90.0)).abs() < 1e-6,
        "recency {recency}"
    );
    // only neutral sentiment (0.10 * 0.5) and recency (0.10 * recency) contribute
    let expected = 0.05 + 0.10 * recency;
    assert!(
        (bare_score - expected).abs() < 1e-9,
        "bare event scores {bare_score}, expected {expected}"
    );
    assert_eq!(bare_tier, "low");
}

#[test]
fn refreshes_are_concurrent_once_populated_and_logged() {
    let mut db = TestDb::with_extension("refreshlog");
    scalar_i64(
        &mut db.client,
        "SELECT sponsorship.refresh_event_quality_scores()",
    );
    scalar_i64(
        &mut db.client,
        "SELECT sponsorship.refresh_event_quality_scores()",
    );
    let rows = db
        .client
        .query(
            "SELECT status, concurrent, duration_ms IS NOT NULL AND finished_at >= started_at
               FROM sponsorship.mv_refresh_log WHERE view_name = 'mv_event_quality_scores' ORDER BY id",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r.get::<_, String>(0), "ok");
        assert!(r.get::<_, bool>(2));
    }
    assert!(
        rows[1].get::<_, bool>(1),
        "a populated view is refreshed concurrently"
    );
}

#[test]
fn refreshing_a_view_that_does_not_exist_is_an_error() {
    let mut db = TestDb::with_extension("refreshbad");
    let msg = expect_error(
        &mut db.client,
        "SELECT sponsorship.refresh_materialized_view('mv_nope')",
        "42P01",
    );
    assert!(msg.contains("mv_nope"), "{msg}");
}
