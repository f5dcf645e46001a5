//! Matching through SQL: hand-computed scores, explanations, batch = per-pair, the
//! recalculation queue and its triggers, retries, concurrency, weights and the worker.
use std::time::{Duration, Instant};

use sponsorship_integration_tests::*;

const ORG: &str = "00000000-0000-0000-0000-00000000000a";
const EVENT: &str = "00000000-0000-0000-0000-0000000000e1";
const SPONSOR: &str = "00000000-0000-0000-0000-0000000000b1";

/// A 384-dimension embedding with the given leading components.
fn embedding(lead: &[f32]) -> String {
    let mut v = vec![0f32; 384];
    v[..lead.len()].copy_from_slice(lead);
    format!(
        "'[{}]'",
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// One event and one sponsor whose every factor is known in advance (see each comment).
fn crafted(db: &mut TestDb, start: &str, end: &str) {
    db.client
        .batch_execute(&format!(
            "INSERT INTO sponsorship.organizations (id, name) VALUES ('{ORG}', 'Org');
             INSERT INTO sponsorship.events (id, org_id, title, description, category, city, country, start_at, end_at,
                                             description_embedding)
             VALUES ('{EVENT}', '{ORG}', 'Austin Indie Fest', 'Three stages of indie music.', 'music', 'Austin', 'US',
                     {start}, {end}, {e_emb});
             -- audience: ages half 25-34, 60% of attendees from Austin
             INSERT INTO sponsorship.event_audience_insights
                 (event_id, attendee_count, age_segments, geo_distribution, engagement_score, ticket_conversion_rate,
                  social_mentions, sentiment_score)
             VALUES ('{EVENT}', 5000, '{{\"25-34\": 0.5, \"35-44\": 0.5}}', '{{\"Austin\": 0.6, \"Elsewhere in US\": 0.4}}',
                     80, 0.1, 2000, 0.5);
             -- packages of 500,000 and 800,000 cents
             INSERT INTO sponsorship.sponsorship_packages (event_id, title, price_cents, currency, inventory) VALUES
               ('{EVENT}', 'Gold', 500000, 'USD', 2), ('{EVENT}', 'Title', 800000, 'USD', 1);
             INSERT INTO sponsorship.sponsors (id, name) VALUES ('{SPONSOR}', 'Lone Star Brewing');
             -- per-event budget 4,000,000 / 4 = 1,000,000: affords both packages
             INSERT INTO sponsorship.sponsor_profiles (sponsor_id, annual_budget_cents, currency, target_audience,
                                                        preferred_categories, regions, objectives_embedding)
             VALUES ('{SPONSOR}', 4000000, 'USD', '{{\"age_segments\": {{\"25-34\": 1}}, \"interests\": [\"music\"]}}',
                     ARRAY['music'], ARRAY['Austin'], {s_emb});
             SELECT sponsorship.refresh_event_quality_scores();",
            e_emb = embedding(&[0.6, 0.8]),
            s_emb = embedding(&[1.0]),
        ))
        .unwrap();
}

fn score_and_breakdown(c: &mut Client) -> (f64, serde_json::Value) {
    let row = c
        .query_one(
            &format!("SELECT score::float8, breakdown::text FROM sponsorship.fn_compute_match_score('{EVENT}', '{SPONSOR}')"),
            &[],
        )
        .unwrap();
    (
        row.get(0),
        serde_json::from_str(row.get::<_, &str>(1)).unwrap(),
    )
}

fn quality(c: &mut Client) -> f64 {
    c.query_one(
        &format!("SELECT final_quality_score FROM sponsorship.mv_event_quality_scores WHERE event_id = '{EVENT}'"),
        &[],
    )
    .unwrap()
    .get(0)
}

fn factor(b: &serde_json::Value, name: &str) -> f64 {
    b["factors"][name]["value"].as_f64().unwrap()
}

#[test]
fn a_crafted_pair_scores_what_the_formula_says_by_hand() {
    let mut db = TestDb::with_extension("crafted");
    crafted(
        &mut db,
        "now() + interval '10 days'",
        "now() + interval '11 days'",
    );
    let q = quality(&mut db.client);
    let (score, b) = score_and_breakdown(&mut db.client);
    assert_eq!(factor(&b, "budget_fit"), 1.0);
    // age 0.5 (weight 0.4), regions 0.6 (0.3), interests 1 (0.3)
    assert!((factor(&b, "audience_overlap") - 0.68).abs() < 1e-6, "{b}");
    assert_eq!(factor(&b, "geo_fit"), 1.0);
    assert!((factor(&b, "engagement_quality") - q).abs() < 1e-6);
    assert!((factor(&b, "objectives_similarity") - 0.6).abs() < 1e-6);
    assert_eq!(b["temporal_fit"], 1.0);
    let expected = 0.30 * 1.0 + 0.25 * 0.68 + 0.15 * 1.0 + 0.20 * q + 0.10 * 0.6;
    assert!(
        (score - expected).abs() < 6e-6,
        "score {score}, expected {expected}"
    );
    assert_eq!(b["missing"], serde_json::json!([]));
    assert_eq!(
        b["factors"]["geo_fit"]["inputs"]["rule"],
        "event city is a sponsor region"
    );
    assert_eq!(
        b["factors"]["budget_fit"]["inputs"]["cheapest_package_cents"],
        500000
    );
    assert_eq!(b["weights_version"], 1);
}

#[test]
fn a_past_event_is_discounted_and_missing_embeddings_are_neutral_and_flagged() {
    let mut db = TestDb::with_extension("pastpair");
    crafted(
        &mut db,
        "now() - interval '31 days'",
        "now() - interval '30 days'",
    );
    db.client
        .batch_execute(&format!(
            "UPDATE sponsorship.events SET description_embedding = NULL WHERE id = '{EVENT}'"
        ))
        .unwrap();
    let (score, b) = score_and_breakdown(&mut db.client);
    let t = b["temporal_fit"].as_f64().unwrap();
    assert!((t - 0.5).abs() < 1e-4, "30 days after the end: {t}");
    assert_eq!(factor(&b, "objectives_similarity"), 0.5);
    assert_eq!(b["objectives_similarity_neutral"], true);
    assert!(b["missing"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("description_embedding")));
    let weighted = b["weighted_sum"].as_f64().unwrap();
    assert!((score - weighted * t).abs() < 1e-5);
}

#[test]
fn unknown_ids_are_an_error_not_a_zero_score() {
    let mut db = TestDb::with_extension("unknownids");
    crafted(&mut db, "now()", "NULL");
    let msg = expect_error(
        &mut db.client,
        &format!(
            "SELECT * FROM sponsorship.fn_compute_match_score(gen_random_uuid(), '{SPONSOR}')"
        ),
        "P0002",
    );
    assert!(msg.contains("event"), "{msg}");
    let msg = expect_error(
        &mut db.client,
        &format!("SELECT * FROM sponsorship.fn_compute_match_score('{EVENT}', gen_random_uuid())"),
        "P0002",
    );
    assert!(msg.contains("sponsor"), "{msg}");
}

/// A small varied marketplace through SQL.
fn small_marketplace(db: &mut TestDb) {
    db.client
        .batch_execute(
            "SELECT setseed(0.5);
             INSERT INTO sponsorship.organizations (id, name) SELECT md5('o' || g)::uuid, 'Org ' || g FROM generate_series(1, 3) g;
             INSERT INTO sponsorship.events (id, org_id, title, category, city, country, start_at, description_embedding)
             SELECT md5('e' || g)::uuid, md5('o' || (1 + g % 3))::uuid, 'Event ' || g,
                    (ARRAY['music','tech','sports'])[1 + g % 3], (ARRAY['Austin','Berlin','Dallas'])[1 + g % 3],
                    (ARRAY['US','DE','US'])[1 + g % 3], now() + ((g * 7 - 60) || ' days')::interval,
                    CASE WHEN g % 4 <> 0 THEN (SELECT array_agg(random()::real - 0.5) FROM generate_series(1, 384) WHERE g > 0)::vector END
               FROM generate_series(1, 20) g;
             INSERT INTO sponsorship.event_audience_insights (event_id, attendee_count, age_segments, geo_distribution, engagement_score)
             SELECT md5('e' || g)::uuid, 100 * g, jsonb_build_object('18-24', 0.3, '25-34', 0.5), jsonb_build_object('Austin', 0.5),
                    (g * 4) % 100
               FROM generate_series(1, 20) g WHERE g % 5 <> 0;
             INSERT INTO sponsorship.sponsorship_packages (event_id, title, price_cents, currency)
             SELECT md5('e' || g)::uuid, 'P' || k, 100000 * k * g, CASE WHEN k = 3 THEN 'EUR' ELSE 'USD' END
               FROM generate_series(1, 20) g, generate_series(1, 3) k WHERE g % 6 <> 0;
             INSERT INTO sponsorship.sponsors (id, name) SELECT md5('s' || g)::uuid, 'Sponsor ' || g FROM generate_series(1, 15) g;
             INSERT INTO sponsorship.sponsor_profiles (sponsor_id, annual_budget_cents, currency, target_audience,
                                                        preferred_categories, regions, objectives_embedding)
             SELECT md5('s' || g)::uuid, CASE WHEN g % 7 <> 0 THEN 1000000 * g END, CASE WHEN g % 4 = 0 THEN 'EUR' ELSE 'USD' END,
                    jsonb_build_object('age_segments', jsonb_build_object('25-34', 1), 'interests', ARRAY['music']),
                    ARRAY[(ARRAY['music','tech','sports'])[1 + g % 3]], ARRAY[(ARRAY['Austin','US','global','Dallas'])[1 + g % 4]],
                    CASE WHEN g % 3 <> 0 THEN (SELECT array_agg(random()::real - 0.5) FROM generate_series(1, 384) WHERE g > 0)::vector END
               FROM generate_series(1, 15) g WHERE g <> 15;
             SELECT sponsorship.refresh_event_quality_scores();",
        )
        .unwrap();
}

#[test]
fn batch_scores_equal_per_pair_scores() {
    let mut db = TestDb::with_extension("batcheq");
    small_marketplace(&mut db);
    let mismatches = scalar_i64(
        &mut db.client,
        "SELECT count(*) FROM sponsorship.events e
           CROSS JOIN LATERAL sponsorship.fn_compute_event_matches(e.id) b
           CROSS JOIN LATERAL sponsorship.fn_compute_match_score(e.id, b.sponsor_id) p
          WHERE p.score <> b.score",
    );
    assert_eq!(mismatches, 0);
    let mismatches = scalar_i64(
        &mut db.client,
        "SELECT count(*) FROM sponsorship.sponsors s
           CROSS JOIN LATERAL sponsorship.fn_compute_sponsor_matches(s.id, true) b
           CROSS JOIN LATERAL sponsorship.fn_compute_match_score(b.event_id, s.id) p
          WHERE p.score <> b.score OR p.breakdown <> b.breakdown",
    );
    assert_eq!(mismatches, 0);
    // the matrix's top-1 per event is the best per-pair score of that event
    let wrong = scalar_i64(
        &mut db.client,
        "WITH best AS (SELECT e.id, max(p.score) AS score FROM sponsorship.events e, sponsorship.sponsors s,
                              LATERAL sponsorship.fn_compute_match_score(e.id, s.id) p GROUP BY e.id)
         SELECT count(*) FROM sponsorship.fn_compute_match_matrix(3) m JOIN best ON best.id = m.event_id
          WHERE m.rank_for_event = 1 AND m.score <> best.score",
    );
    assert_eq!(wrong, 0);
    assert_eq!(
        scalar_i64(&mut db.client, "SELECT count(*) FROM sponsorship.fn_compute_match_matrix(3) WHERE rank_for_event IS NOT NULL"),
        20 * 3
    );
}

fn pending(c: &mut Client) -> Vec<(Option<String>, Option<String>)> {
    c.query(
        "SELECT event_id::text, sponsor_id::text FROM sponsorship.fit_recalc_queue WHERE processed_at IS NULL
          ORDER BY 1 NULLS FIRST, 2 NULLS FIRST",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

#[test]
fn triggers_enqueue_the_right_ids_and_deduplicate() {
    let mut db = TestDb::with_extension("triggers");
    crafted(&mut db, "now() + interval '5 days'", "NULL");
    let c = &mut db.client;
    // the inserts queued the event (insert, insights, packages) and the sponsor (profile)
    assert_eq!(
        pending(c),
        vec![(None, Some(SPONSOR.into())), (Some(EVENT.into()), None)]
    );
    c.batch_execute("UPDATE sponsorship.fit_recalc_queue SET processed_at = now()")
        .unwrap();

    c.batch_execute(&format!(
        "UPDATE sponsorship.events SET capacity = 900 WHERE id = '{EVENT}'"
    ))
    .unwrap();
    assert!(
        pending(c).is_empty(),
        "a column that does not affect matching queues nothing"
    );

    c.batch_execute(&format!(
        "UPDATE sponsorship.events SET description = 'New text' WHERE id = '{EVENT}';
         UPDATE sponsorship.events SET category = 'food' WHERE id = '{EVENT}';
         UPDATE sponsorship.sponsorship_packages SET price_cents = price_cents + 1 WHERE event_id = '{EVENT}';"
    ))
    .unwrap();
    assert_eq!(
        pending(c),
        vec![(Some(EVENT.into()), None)],
        "one pending row per event, however many edits"
    );

    c.batch_execute(&format!("UPDATE sponsorship.sponsor_profiles SET regions = ARRAY['Dallas'] WHERE sponsor_id = '{SPONSOR}'"))
        .unwrap();
    assert_eq!(
        pending(c),
        vec![(None, Some(SPONSOR.into())), (Some(EVENT.into()), None)]
    );

    // deleting a sponsor cascades to its profile without failing on the queue
    c.batch_execute(&format!(
        "DELETE FROM sponsorship.sponsors WHERE id = '{SPONSOR}'"
    ))
    .unwrap();
    assert_eq!(pending(c), vec![(Some(EVENT.into()), None)]);
}

#[test]
fn a_sponsor_member_writes_its_profile_under_rls_and_the_queue_follows() {
    let mut db = TestDb::with_extension("rlsqueue");
    let c = &mut db.client;
    let user = "20000000-0000-0000-0000-000000000001";
    c.batch_execute(&format!(
        "RESET ROLE; SELECT set_config('request.jwt.claims', '{{\"sub\": \"{user}\"}}', false);
         SET ROLE authenticated;
         INSERT INTO sponsorship.sponsors (id, name) VALUES ('{SPONSOR}', 'Mine');
         INSERT INTO sponsorship.sponsor_profiles (sponsor_id, annual_budget_cents, regions) VALUES ('{SPONSOR}', 100000, ARRAY['global']);
         UPDATE sponsorship.sponsor_profiles SET annual_budget_cents = 200000 WHERE sponsor_id = '{SPONSOR}';
         RESET ROLE;"
    ))
    .unwrap();
    assert_eq!(pending(c), vec![(None, Some(SPONSOR.into()))]);
}

#[test]
fn the_queue_drains_into_matches_and_each_row_is_processed_once() {
    let mut db = TestDb::with_extension("drain");
    small_marketplace(&mut db);
    let mut a = db.connect();
    let mut b = db.connect();
    let c = &mut db.client;
    let queued = scalar_i64(
        c,
        "SELECT count(*) FROM sponsorship.fit_recalc_queue WHERE processed_at IS NULL",
    );
    assert_eq!(queued, 20 + 14, "every event and every profile");

    // Two sessions drain at the same time: A claims inside an open transaction, then B runs
    // while A still holds its rows (B may wait for A's match writes, never for its rows).
    let (claimed_tx, claimed_rx) = std::sync::mpsc::channel();
    let session_a = std::thread::spawn(move || {
        let mut ta = a.transaction().unwrap();
        let n: i32 = ta
            .query_one("SELECT sponsorship.update_sponsorship_matches(20)", &[])
            .unwrap()
            .get(0);
        claimed_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        ta.commit().unwrap();
        n
    });
    claimed_rx.recv().unwrap();
    let session_b = std::thread::spawn(move || {
        let n: i32 = b
            .query_one("SELECT sponsorship.update_sponsorship_matches(20)", &[])
            .unwrap()
            .get(0);
        n
    });
    let (na, nb) = (session_a.join().unwrap(), session_b.join().unwrap());
    assert_eq!(
        na + nb,
        34,
        "together they processed everything ({na} + {nb})"
    );
    assert_eq!(
        scalar_i64(c, "SELECT count(*) FROM sponsorship.fit_recalc_queue WHERE attempts <> 1 OR processed_at IS NULL"),
        0,
        "no row was claimed twice"
    );
    // every event has its matches, stored with the breakdown and the weights version
    assert_eq!(
        scalar_i64(
            c,
            "SELECT count(DISTINCT event_id) FROM sponsorship.sponsorship_matches"
        ),
        20
    );
    assert_eq!(
        scalar_i64(
            c,
            "SELECT count(*) FROM sponsorship.sponsorship_matches
              WHERE overlap_metrics ?& ARRAY['budget_fit', 'audience_overlap', 'geo_fit', 'engagement_quality',
                                            'objectives_similarity', 'temporal_fit', 'missing']
                AND (overlap_metrics ->> 'score')::numeric = score
                AND (overlap_metrics ->> 'weights_version')::int = weights_version AND weights_version = 1"
        ),
        scalar_i64(c, "SELECT count(*) FROM sponsorship.sponsorship_matches")
    );
    // stored scores are the per-pair scores (past events decay with time, so allow the
    // drift of the seconds between writing and checking)
    assert_eq!(
        scalar_i64(
            c,
            "SELECT count(*) FROM sponsorship.sponsorship_matches m,
                    LATERAL sponsorship.fn_compute_match_score(m.event_id, m.sponsor_id) p
              WHERE abs(p.score - m.score) > 0.00002"
        ),
        0
    );
    let health = c
        .query_one(
            "SELECT total_pending, failing, dead FROM sponsorship.check_recalc_queue_health()",
            &[],
        )
        .unwrap();
    assert_eq!(
        (
            health.get::<_, i32>(0),
            health.get::<_, i32>(1),
            health.get::<_, i32>(2)
        ),
        (0, 0, 0)
    );
}

#[test]
fn a_failing_row_is_retried_with_backoff_then_left_dead_and_visible() {
    let mut db = TestDb::with_extension("retry");
    small_marketplace(&mut db);
    let c = &mut db.client;
    // Make writing matches for one sponsor fail.
    let bad = scalar_string(c, "SELECT md5('s1')::uuid::text");
    c.batch_execute(&format!(
        "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'refusing sponsor %', NEW.sponsor_id; END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON sponsorship.sponsorship_matches
           FOR EACH ROW WHEN (NEW.sponsor_id = '{bad}') EXECUTE FUNCTION public.refuse();
         UPDATE sponsorship.fit_recalc_queue SET processed_at = now();
         SELECT sponsorship.enqueue_recalc(NULL, '{bad}', 'test', 0);
         SELECT sponsorship.enqueue_recalc(NULL, md5('s2')::uuid, 'test', 0);"
    ))
    .unwrap();
    let n: i32 = c
        .query_one("SELECT sponsorship.update_sponsorship_matches(10)", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "the good row is processed despite the bad one");
    let row = c
        .query_one(
            &format!(
                "SELECT attempts, last_error, next_attempt_at > now() + interval '20 seconds', processed_at IS NULL
                   FROM sponsorship.fit_recalc_queue WHERE sponsor_id = '{bad}' AND processed_at IS NULL"
            ),
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    assert!(
        row.get::<_, String>(1).contains("refusing sponsor"),
        "{}",
        row.get::<_, String>(1)
    );
    assert!(row.get::<_, bool>(2), "retried later, with backoff");
    let h = c
        .query_one(
            "SELECT failing, dead FROM sponsorship.check_recalc_queue_health()",
            &[],
        )
        .unwrap();
    assert_eq!((h.get::<_, i32>(0), h.get::<_, i32>(1)), (1, 0));

    // out of attempts: left dead, counted, not retried
    c.batch_execute("SET sponsorship.recalc_max_attempts = 2; UPDATE sponsorship.fit_recalc_queue SET next_attempt_at = now()")
        .unwrap();
    let n: i32 = c
        .query_one("SELECT sponsorship.update_sponsorship_matches(10)", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    c.batch_execute("UPDATE sponsorship.fit_recalc_queue SET next_attempt_at = now()")
        .unwrap();
    let n: i32 = c
        .query_one("SELECT sponsorship.update_sponsorship_matches(10)", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "a dead row is not claimed");
    let h = c
        .query_one(
            "SELECT failing, dead FROM sponsorship.check_recalc_queue_health()",
            &[],
        )
        .unwrap();
    assert_eq!((h.get::<_, i32>(0), h.get::<_, i32>(1)), (0, 1));
}

#[test]
fn weights_are_validated_and_versioned() {
    let mut db = TestDb::with_extension("weights");
    crafted(&mut db, "now() + interval '3 days'", "NULL");
    let c = &mut db.client;
    let msg = expect_error(
        c,
        "SELECT sponsorship.set_scoring_weights(0.5, 0.5, 0.5, 0, 0)",
        "22023",
    );
    assert!(msg.contains("sum to 1"), "{msg}");
    expect_error(
        c,
        "SELECT sponsorship.set_scoring_weights(-0.2, 0.4, 0.4, 0.2, 0.2)",
        "22023",
    );
    expect_error(
        c,
        "SELECT sponsorship.set_scoring_weights(NULL, 0.4, 0.4, 0.2, 0.2)",
        "22004",
    );
    let v: i32 = c
        .query_one(
            "SELECT sponsorship.set_scoring_weights(0.2, 0.2, 0.2, 0.2, 0.2, 'equal')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(v, 2);
    let (_, b) = score_and_breakdown(c);
    assert_eq!(b["weights_version"], 2);
    assert_eq!(b["factors"]["budget_fit"]["weight"], 0.2);
    assert_eq!(
        scalar_i64(
            c,
            "SELECT count(*) FROM sponsorship.scoring_weights WHERE is_active"
        ),
        1
    );
}

#[test]
fn recommendations_keep_the_old_columns_and_fall_back_to_live_scores() {
    let mut db = TestDb::with_extension("recs");
    small_marketplace(&mut db);
    let c = &mut db.client;
    let event = scalar_string(c, "SELECT md5('e1')::uuid::text");
    let sponsor = scalar_string(c, "SELECT md5('s1')::uuid::text");
    // nothing stored yet: scored live
    let live = c
        .query(
            &format!("SELECT sponsor_id, sponsor_name, industry, match_score, budget_fit, audience_alignment, quality_indicators
                        FROM sponsorship.get_sponsor_recommendations('{event}', 5)"),
            &[],
        )
        .unwrap();
    assert_eq!(live.len(), 5);
    let best_live = scalar_string(
        c,
        &format!(
            "SELECT sponsor_id::text FROM sponsorship.fn_compute_event_matches('{event}') LIMIT 1"
        ),
    );
    assert_eq!(live[0].get::<_, uuid_str::Uuid>(0).0, best_live);
    let events = c
        .query(
            &format!("SELECT event_id, event_title, category, start_at, match_score, quality_score, engagement_metrics
                        FROM sponsorship.get_event_recommendations('{sponsor}', 3)"),
            &[],
        )
        .unwrap();
    assert_eq!(events.len(), 3);
    // stored matches are used once they exist, and rejected ones are left out
    c.batch_execute("SELECT sponsorship.update_sponsorship_matches(100)")
        .unwrap();
    c.batch_execute(&format!(
        "UPDATE sponsorship.sponsorship_matches SET status = 'rejected' WHERE event_id = '{event}' AND sponsor_id = '{best_live}'"
    ))
    .unwrap();
    let first = scalar_string(
        c,
        &format!(
            "SELECT sponsor_id::text FROM sponsorship.get_sponsor_recommendations('{event}', 1)"
        ),
    );
    assert_ne!(first, best_live, "a rejected match is not recommended");
    expect_error(
        c,
        "SELECT * FROM sponsorship.get_sponsor_recommendations(gen_random_uuid())",
        "P0002",
    );
    expect_error(
        c,
        &format!("SELECT * FROM sponsorship.get_sponsor_recommendations('{event}', 0)"),
        "22023",
    );
}

/// Reads a uuid column as text without the uuid crate.
mod uuid_str {
    pub struct Uuid(pub String);
    impl<'a> postgres::types::FromSql<'a> for Uuid {
        fn from_sql(
            _: &postgres::types::Type,
            raw: &'a [u8],
        ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
            let h: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            Ok(Uuid(format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            )))
        }
        fn accepts(ty: &postgres::types::Type) -> bool {
            *ty == postgres::types::Type::UUID
        }
    }
}

#[test]
fn the_worker_picks_up_an_edit_within_seconds() {
    // The worker runs in the database named by sponsorship.worker_database, which
    // scripts/test.sh sets to 'postgres' for its cluster.
    let mut c = connect("postgres");
    let db = scalar_string(
        &mut c,
        "SELECT current_setting('sponsorship.worker_database', true)",
    );
    assert_eq!(
        db, "postgres",
        "this test needs a cluster whose worker serves the postgres database (scripts/test.sh)"
    );
    c.batch_execute("SET client_min_messages = warning; DROP EXTENSION IF EXISTS sponsorship CASCADE; CREATE EXTENSION sponsorship CASCADE")
        .unwrap();
    let guard = DropExtension;
    let running: bool = c
        .query_one("SELECT running FROM sponsorship.worker_status()", &[])
        .unwrap()
        .get(0);
    assert!(
        running,
        "the worker should be running (shared_preload_libraries includes sponsorship)"
    );
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.organizations (id, name) VALUES ('{ORG}', 'Org');
         INSERT INTO sponsorship.events (id, org_id, title, category, city, start_at)
         VALUES ('{EVENT}', '{ORG}', 'Worker test', 'music', 'Austin', now() + interval '1 day');
         INSERT INTO sponsorship.sponsors (id, name) VALUES ('{SPONSOR}', 'S');
         INSERT INTO sponsorship.sponsor_profiles (sponsor_id, annual_budget_cents, regions) VALUES ('{SPONSOR}', 1000000, ARRAY['Austin']);"
    ))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let started = Instant::now();
    loop {
        let n = scalar_i64(
            &mut c,
            "SELECT count(*) FROM sponsorship.sponsorship_matches",
        );
        let pending = scalar_i64(
            &mut c,
            "SELECT count(*) FROM sponsorship.fit_recalc_queue WHERE processed_at IS NULL",
        );
        if n == 1 && pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker did not drain the queue in 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // an edit is picked up too
    c.batch_execute(&format!("UPDATE sponsorship.sponsor_profiles SET regions = ARRAY['Berlin'] WHERE sponsor_id = '{SPONSOR}'"))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let geo: f64 = c
            .query_one("SELECT (overlap_metrics ->> 'geo_fit')::float8 FROM sponsorship.sponsorship_matches", &[])
            .unwrap()
            .get(0);
        if geo == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker did not rescore the edited profile in 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "worker drained the queue {:?} after the first insert",
        started.elapsed()
    );
    // the worker also computed the event's embedding, and the match was rescored with it
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = scalar_bool(
            &mut c,
            &format!(
                "SELECT e.description_embedding IS NOT NULL AND NOT e.description_embedding_stale
                        AND NOT EXISTS (SELECT 1 FROM sponsorship.fit_recalc_queue WHERE processed_at IS NULL)
                   FROM sponsorship.events e WHERE e.id = '{EVENT}'"
            ),
        );
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "the worker did not embed the new event in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(scalar_bool(
        &mut c,
        &format!(
            "SELECT sponsorship.cosine_similarity(description_embedding,
                    sponsorship.embed(sponsorship.event_embedding_text(title, category, description))) > 0.999999
               FROM sponsorship.events WHERE id = '{EVENT}'"
        )
    ));
    drop(guard);
}

/// Switched off by a reload while it drains a backlog, the worker stops after the pass it is
/// in (it used to drain the whole backlog first), and a reload that switches it on with a new
/// batch size resumes it with that size.
#[test]
fn a_worker_switched_off_mid_backlog_stops_and_resumes_when_switched_on() {
    let cluster = OwnCluster::start(
        "workeroff",
        "sponsorship.worker_database = 'w'\nsponsorship.worker_count = 1\nsponsorship.worker_naptime_ms = 50\n\
         sponsorship.worker_enabled = off\nsponsorship.worker_batch_size = 1\nsponsorship.payout_worker_enabled = off",
    );
    cluster
        .connect("postgres")
        .batch_execute("CREATE DATABASE w")
        .unwrap();
    let mut c = cluster.connect("w");
    // 100 events x 200 sponsors, and a backlog of all 20,000 pairs (one pass each at batch size
    // 1; the worker embeds the new texts first, which queues their rescoring too)
    c.batch_execute(
        "SET client_min_messages = warning; CREATE EXTENSION sponsorship CASCADE;
         INSERT INTO sponsorship.organizations (id, name) VALUES (md5('org')::uuid, 'Org');
         INSERT INTO sponsorship.events (id, org_id, title, category, city, start_at)
         SELECT md5('e' || g)::uuid, md5('org')::uuid, 'Event ' || g, (ARRAY['music', 'tech'])[1 + g % 2], 'Austin',
                now() + interval '10 days'
           FROM generate_series(1, 100) g;
         INSERT INTO sponsorship.sponsors (id, name) SELECT md5('s' || g)::uuid, 'Sponsor ' || g FROM generate_series(1, 200) g;
         INSERT INTO sponsorship.sponsor_profiles (sponsor_id, annual_budget_cents, regions)
         SELECT md5('s' || g)::uuid, 100000 * g, ARRAY['Austin'] FROM generate_series(1, 200) g;
         TRUNCATE sponsorship.fit_recalc_queue;
         INSERT INTO sponsorship.fit_recalc_queue (event_id, sponsor_id, reason)
         SELECT e.id, s.id, 'backlog' FROM sponsorship.events e CROSS JOIN sponsorship.sponsors s;",
    )
    .unwrap();
    let total = 20_000;
    let processed = |c: &mut Client| {
        scalar_i64(
            c,
            "SELECT count(*) FROM sponsorship.fit_recalc_queue WHERE processed_at IS NOT NULL AND reason = 'backlog'",
        )
    };
    // (ALTER SYSTEM refuses a transaction block, so one statement at a time)
    let reload = |c: &mut Client, sql: &str| {
        for statement in sql.split(';').chain(["SELECT pg_reload_conf()"]) {
            c.batch_execute(statement).unwrap();
        }
    };
    reload(&mut c, "ALTER SYSTEM SET sponsorship.worker_enabled = on");
    let deadline = Instant::now() + Duration::from_secs(30);
    while processed(&mut c) < 20 {
        assert!(Instant::now() < deadline, "the worker did not start draining\n{}", cluster.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    reload(&mut c, "ALTER SYSTEM SET sponsorship.worker_enabled = off");
    // once nothing moves for a second, the worker has stopped
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = processed(&mut c);
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = processed(&mut c);
        if now == last {
            break;
        }
        assert!(Instant::now() < deadline, "the worker never stopped");
        last = now;
    }
    assert!(
        last < total / 2,
        "switched off, the worker went on to process {last} of {total} rows"
    );
    // switched on again with a larger batch: the rest is drained
    reload(
        &mut c,
        "ALTER SYSTEM SET sponsorship.worker_batch_size = 2000; ALTER SYSTEM SET sponsorship.worker_enabled = on",
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while processed(&mut c) < total {
        assert!(Instant::now() < deadline, "the rest was not drained\n{}", cluster.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        scalar_i64(&mut c, "SELECT count(*) FROM sponsorship.sponsorship_matches"),
        total
    );
    eprintln!("switched off after {last} of {total} rows; the rest drained after switching on");
}

struct DropExtension;

impl Drop for DropExtension {
    fn drop(&mut self) {
        let mut c = connect("postgres");
        let _ = c.batch_execute("DROP EXTENSION IF EXISTS sponsorship CASCADE");
    }
}

#[test]
fn the_semantic_match_has_three_different_signals() {
    let mut db = TestDb::with_extension("semantic");
    crafted(&mut db, "now() + interval '10 days'", "NULL");
    let c = &mut db.client;
    c.batch_execute(&format!(
        "UPDATE sponsorship.sponsor_profiles
            SET brand_objectives = '{{\"description\": \"Grow awareness of craft beer at indie music festivals\"}}'
          WHERE sponsor_id = '{SPONSOR}'"
    ))
    .unwrap();
    let row = |c: &mut Client| -> (Option<f64>, Option<f64>, Option<f64>, Option<f64>) {
        let r = c
            .query_one(
                &format!(
                    "SELECT match_score::float8, semantic_similarity::float8, objectives_alignment::float8,
                            description_alignment::float8
                       FROM sponsorship.semantic_sponsor_event_match('{SPONSOR}', '{EVENT}')"
                ),
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    };
    // meaning: cos([1,0], [0.6,0.8]) = 0.6; wording: indie and music of 7 objective words;
    // no sponsorship history yet
    let (m, s, o, d) = row(c);
    assert!((s.unwrap() - 0.6).abs() < 1e-5);
    assert!((o.unwrap() - 2.0 / 7.0).abs() < 1e-5, "{o:?}");
    assert_eq!(d, None, "no track record yet");
    assert!((m.unwrap() - (0.5 * 0.6 + 0.25 * 2.0 / 7.0) / 0.75).abs() < 1e-5);

    // a paid, completed sponsorship of an event described like [0,1]: track record cos = 0.8
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.events (id, org_id, title, start_at, description_embedding)
         VALUES ('00000000-0000-0000-0000-0000000000e2', '{ORG}', 'Last year', now() - interval '1 year', {emb});
         INSERT INTO sponsorship.sponsorship_packages (id, event_id, title, price_cents)
         VALUES ('00000000-0000-0000-0000-0000000000f2', '00000000-0000-0000-0000-0000000000e2', 'Gold', 1000);
         INSERT INTO sponsorship.sponsorship_orders (package_id, sponsor_id, event_id, amount_cents, status, stripe_charge_id)
         VALUES ('00000000-0000-0000-0000-0000000000f2', '{SPONSOR}', '00000000-0000-0000-0000-0000000000e2', 1000,
                 'completed', 'ch_test');",
        emb = embedding(&[0.0, 1.0])
    ))
    .unwrap();
    let (m, s, o, d) = row(c);
    assert!((d.unwrap() - 0.8).abs() < 1e-5, "{d:?}");
    let expected = 0.5 * s.unwrap() + 0.25 * o.unwrap() + 0.25 * 0.8;
    assert!((m.unwrap() - expected).abs() < 1e-5);
    assert!(s != o && o != d, "three different signals");

    expect_error(
        c,
        &format!(
            "SELECT * FROM sponsorship.semantic_sponsor_event_match(gen_random_uuid(), '{EVENT}')"
        ),
        "P0002",
    );
    expect_error(c, &format!("SELECT * FROM sponsorship.semantic_sponsor_event_match('{SPONSOR}', gen_random_uuid())"), "P0002");
}

#[test]
fn one_event_against_all_sponsors_follows_every_change_between_calls() {
    let mut db = TestDb::with_extension("sidecache");
    small_marketplace(&mut db);
    let mut other = db.connect();
    let c = &mut db.client;
    let event = scalar_string(c, "SELECT md5('e1')::uuid::text");
    let sponsor = scalar_string(c, "SELECT md5('s2')::uuid::text");
    let batch = |c: &mut Client| -> String {
        scalar_string(
            c,
            &format!("SELECT score::text FROM sponsorship.fn_compute_event_matches('{event}') WHERE sponsor_id = '{sponsor}'"),
        )
    };
    let pair = |c: &mut Client| -> String {
        scalar_string(c, &format!("SELECT score::text FROM sponsorship.fn_compute_match_score('{event}', '{sponsor}')"))
    };
    let first = batch(c);
    assert_eq!(first, pair(c));
    // a change committed by another session is seen by the next call of this one
    other
        .batch_execute(&format!(
            "UPDATE sponsorship.sponsor_profiles SET regions = ARRAY['Berlin'], annual_budget_cents = 1
              WHERE sponsor_id = '{sponsor}'"
        ))
        .unwrap();
    let second = batch(c);
    assert_ne!(first, second, "the edit changes the score");
    assert_eq!(second, pair(c));
    // and so is this session's own uncommitted change, and its rollback
    c.batch_execute(&format!(
        "BEGIN; UPDATE sponsorship.sponsor_profiles SET regions = ARRAY['global'] WHERE sponsor_id = '{sponsor}'"
    ))
    .unwrap();
    let third = batch(c);
    assert_eq!(third, pair(c));
    assert_ne!(third, second);
    c.batch_execute("ROLLBACK").unwrap();
    assert_eq!(batch(c), second);
    // a new sponsor appears
    other
        .batch_execute(&format!(
            "INSERT INTO sponsorship.sponsors (id, name) VALUES ('00000000-0000-0000-0000-0000000000c9', 'Late');"
        ))
        .unwrap();
    let n = scalar_i64(
        c,
        &format!("SELECT count(*) FROM sponsorship.fn_compute_event_matches('{event}')"),
    );
    assert_eq!(n, 16);
}

/// The score and breakdown of a pair, from the cache if the session holds one, and with the
/// cache switched off, in one transaction (so both see the same now()).
fn cached_and_uncached(c: &mut Client, event: &str, sponsor: &str) -> ((String, String), (String, String)) {
    let q = format!("SELECT score::text, breakdown::text FROM sponsorship.fn_compute_match_score('{event}', '{sponsor}')");
    let mut tx = c.transaction().unwrap();
    let a = tx.query_one(&q, &[]).unwrap();
    tx.batch_execute("SET LOCAL sponsorship.match_cache_mb = 0").unwrap();
    let b = tx.query_one(&q, &[]).unwrap();
    tx.commit().unwrap();
    ((a.get(0), a.get(1)), (b.get(0), b.get(1)))
}

fn cache_hits(c: &mut Client) -> i64 {
    scalar_i64(c, "SELECT hits FROM sponsorship.match_cache_status()")
}

#[test]
fn the_cached_marketplace_serves_only_what_the_callers_snapshot_would_read() {
    let mut db = TestDb::with_extension("wholecache");
    small_marketplace(&mut db);
    let mut other = db.connect();
    let c = &mut db.client;
    let event = scalar_string(c, "SELECT md5('e2')::uuid::text");
    let sponsor = scalar_string(c, "SELECT md5('s3')::uuid::text");

    // one sponsor against every event builds the whole marketplace in this backend
    scalar_i64(c, &format!("SELECT count(*) FROM sponsorship.fn_compute_sponsor_matches('{sponsor}')"));
    let (sponsors, events) = {
        let r = c.query_one("SELECT sponsors, events FROM sponsorship.match_cache_status()", &[]).unwrap();
        (r.get::<_, Option<i64>>(0), r.get::<_, Option<i64>>(1))
    };
    assert_eq!((sponsors, events), (Some(15), Some(20)));

    // a cached pair is exactly the uncached pair, breakdown included, and it was a cache hit
    let before = cache_hits(c);
    let (cached, uncached) = cached_and_uncached(c, &event, &sponsor);
    assert_eq!(cached, uncached);
    assert_eq!(cache_hits(c), before + 1, "the first call was served from the cache");
    let original = cached.0.clone();

    // a change committed by another session is seen at once
    other
        .batch_execute(&format!(
            "UPDATE sponsorship.sponsor_profiles SET annual_budget_cents = 1, regions = ARRAY['Berlin'] WHERE sponsor_id = '{sponsor}'"
        ))
        .unwrap();
    let (cached, uncached) = cached_and_uncached(c, &event, &sponsor);
    assert_eq!(cached, uncached);
    assert_ne!(cached.0, original, "the edit changes the score");
    let edited = cached.0.clone();

    // a repeatable-read transaction keeps reading its snapshot, cache or not
    scalar_i64(c, &format!("SELECT count(*) FROM sponsorship.fn_compute_sponsor_matches('{sponsor}')"));
    c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ").unwrap();
    let q = format!("SELECT score::text FROM sponsorship.fn_compute_match_score('{event}', '{sponsor}')");
    assert_eq!(scalar_string(c, &q), edited);
    other
        .batch_execute(&format!("UPDATE sponsorship.sponsor_profiles SET annual_budget_cents = 900000000 WHERE sponsor_id = '{sponsor}'"))
        .unwrap();
    assert_eq!(scalar_string(c, &q), edited, "the snapshot does not see the other session's change");
    c.batch_execute("COMMIT").unwrap();
    let (cached, uncached) = cached_and_uncached(c, &event, &sponsor);
    assert_eq!(cached, uncached);
    assert_ne!(cached.0, edited);
    let rich = cached.0.clone();

    // this session's own uncommitted change is seen, and its rollback
    c.batch_execute(&format!(
        "BEGIN; UPDATE sponsorship.sponsor_profiles SET annual_budget_cents = 1 WHERE sponsor_id = '{sponsor}'"
    ))
    .unwrap();
    assert_ne!(scalar_string(c, &q), rich);
    c.batch_execute("ROLLBACK").unwrap();
    assert_eq!(cached_and_uncached(c, &event, &sponsor).0 .0, rich);

    // a direct REFRESH MATERIALIZED VIEW of the quality scores is noticed (event trigger):
    // insights change with triggers off (no log row), so only the refresh can tell
    scalar_i64(c, &format!("SELECT count(*) FROM sponsorship.fn_compute_sponsor_matches('{sponsor}')"));
    other
        .batch_execute(&format!(
            "SET session_replication_role = replica;
             UPDATE sponsorship.event_audience_insights SET engagement_score = 100 - engagement_score,
                    social_mentions = 9000, sentiment_score = 1 WHERE event_id = '{event}';
             SET session_replication_role = origin;"
        ))
        .unwrap();
    let (cached, uncached) = cached_and_uncached(c, &event, &sponsor);
    assert_eq!(cached, uncached);
    assert_eq!(cached.0, rich, "the quality view is not refreshed yet");
    other.batch_execute("REFRESH MATERIALIZED VIEW sponsorship.mv_event_quality_scores").unwrap();
    let (cached, uncached) = cached_and_uncached(c, &event, &sponsor);
    assert_eq!(cached, uncached);
    assert_ne!(cached.0, rich, "the refreshed quality score changes the match");
}

#[test]
fn the_cached_marketplace_is_never_shared_between_callers() {
    let mut db = TestDb::with_extension("cacheviewers");
    small_marketplace(&mut db);
    let c = &mut db.client;
    c.batch_execute(
        "UPDATE sponsorship.events SET visibility = 'private' WHERE id = md5('e3')::uuid;
         INSERT INTO sponsorship.org_members (org_id, user_id, role)
         SELECT org_id, '00000000-0000-0000-0000-00000000a001', 'viewer' FROM sponsorship.events WHERE id = md5('e3')::uuid;
         GRANT USAGE ON SCHEMA sponsorship TO authenticated;",
    )
    .unwrap();
    let event = scalar_string(c, "SELECT md5('e3')::uuid::text");
    let sponsor = scalar_string(c, "SELECT md5('s1')::uuid::text");
    let q = format!("SELECT score::text FROM sponsorship.fn_compute_match_score('{event}', '{sponsor}')");
    // the superuser builds a cache that holds the private event
    scalar_i64(c, &format!("SELECT count(*) FROM sponsorship.fn_compute_sponsor_matches('{sponsor}')"));
    assert_eq!(scalar_i64(c, "SELECT events FROM sponsorship.match_cache_status()"), 20);
    let owner_view = scalar_string(c, &q);
    // anon may not see it, cache or not
    c.batch_execute("SET ROLE anon").unwrap();
    expect_error(c, &q, "P0002");
    scalar_i64(c, &format!("SELECT count(*) FROM sponsorship.fn_compute_sponsor_matches('{sponsor}')"));
    assert_eq!(scalar_i64(c, "SELECT events FROM sponsorship.match_cache_status()"), 19, "anon's own cache");
    expect_error(c, &q, "P0002");
    // a signed-in member of the organizer may
    c.batch_execute(
        "RESET ROLE; SET ROLE authenticated;
         SELECT set_config('request.jwt.claims', '{\"sub\":\"00000000-0000-0000-0000-00000000a001\"}', false);",
    )
    .unwrap();
    assert_eq!(scalar_string(c, &q), owner_view);
    // and a signed-in stranger may not, right after the member's call
    c.batch_execute("SELECT set_config('request.jwt.claims', '{\"sub\":\"00000000-0000-0000-0000-00000000a002\"}', false)")
        .unwrap();
    expect_error(c, &q, "P0002");
    c.batch_execute("RESET ROLE").unwrap();
}

#[test]
fn per_pair_calls_alone_build_the_cache_once_they_have_cost_a_build() {
    let mut db = TestDb::with_extension("cacherent");
    small_marketplace(&mut db);
    let c = &mut db.client;
    // pairs in a loop; each call without the cache adds its time, so this ends
    c.batch_execute(
        "DO $$
         DECLARE n int := 0;
         BEGIN
           LOOP
             PERFORM * FROM sponsorship.fn_compute_match_score(md5('e' || (1 + n % 20))::uuid, md5('s' || (1 + n % 15))::uuid);
             n := n + 1;
             EXIT WHEN (SELECT whole_builds FROM sponsorship.match_cache_status()) > 0 OR n >= 200000;
           END LOOP;
           PERFORM set_config('test.calls', n::text, false);
         END $$",
    )
    .unwrap();
    let calls = scalar_i64(c, "SELECT current_setting('test.calls')::int8");
    let r = c
        .query_one("SELECT whole_builds, events, misses, hits FROM sponsorship.match_cache_status()", &[])
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), 1, "built once, after {calls} calls");
    assert_eq!(r.get::<_, Option<i64>>(1), Some(20));
    assert!(calls >= 2, "the first call does not build it (a backend that scores one pair never pays a build)");
    // from then on pairs come from it
    let hits = r.get::<_, i64>(3);
    scalar_i64(c, "SELECT count(*) FROM sponsorship.fn_compute_match_score(md5('e1')::uuid, md5('s1')::uuid)");
    assert_eq!(cache_hits(c), hits + 1);
}

#[test]
fn the_change_log_is_pruned_and_a_cache_older_than_the_pruning_rebuilds() {
    let mut db = TestDb::with_extension("cacheprune");
    small_marketplace(&mut db);
    let c = &mut db.client;
    assert!(scalar_i64(c, "SELECT count(*) FROM sponsorship.match_input_changes") > 0, "the load left rows");
    scalar_i64(c, "SELECT count(*) FROM sponsorship.fn_compute_sponsor_matches(md5('s1')::uuid)");
    let builds = scalar_i64(c, "SELECT sponsor_side_builds FROM sponsorship.match_cache_status()");
    // one more change, then prune everything older than now
    let xid = scalar_string(
        c,
        "UPDATE sponsorship.sponsors SET name = name || '!' WHERE id = md5('s1')::uuid RETURNING pg_current_xact_id()::text",
    );
    // (a transaction running anywhere in the cluster holds the horizon back; wait for it)
    let mut pruned = 0;
    for _ in 0..400 {
        pruned += scalar_i64(c, "SELECT sponsorship.prune_match_input_changes(interval '0')::int8");
        if scalar_i64(c, &format!("SELECT count(*) FROM sponsorship.match_input_changes WHERE xid <= '{xid}'")) == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(pruned >= 2, "pruned {pruned}: the load's row and the update's");
    assert_eq!(scalar_i64(c, &format!("SELECT count(*) FROM sponsorship.match_input_changes WHERE xid <= '{xid}'")), 0);
    // the cache was read before the pruned rows: it rebuilds rather than miss the change
    scalar_i64(c, "SELECT count(*) FROM sponsorship.fn_compute_sponsor_matches(md5('s1')::uuid)");
    assert_eq!(scalar_i64(c, "SELECT sponsor_side_builds FROM sponsorship.match_cache_status()"), builds + 1);
    // bad input
    expect_error(c, "SELECT sponsorship.prune_match_input_changes(interval '-1 day')", "22023");
    // the log is service-only
    c.batch_execute("SET ROLE authenticated").unwrap();
    expect_error(c, "SELECT count(*) FROM sponsorship.match_input_changes", "42501");
    c.batch_execute("RESET ROLE").unwrap();
}

#[test]
fn the_parallel_safe_functions_run_in_parallel_workers() {
    // Found by the load run: a PARALLEL SAFE function that looked up pgvector's type through
    // an SPI call that assigns a transaction id failed inside a parallel worker ("cannot
    // assign XIDs during a parallel operation"). force_parallel_mode runs each query below in
    // a worker process, which looks the type up afresh.
    let mut db = TestDb::with_extension("parallel");
    small_marketplace(&mut db);
    let mut c = db.connect();
    c.batch_execute("SET force_parallel_mode = on; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0")
        .unwrap();
    let plan: String = c
        .query("EXPLAIN (COSTS OFF) SELECT sponsorship.cosine_similarity('[1,2]'::vector, '[2,4]'::vector)", &[])
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(plan.contains("Gather"), "the query runs in a parallel worker:\n{plan}");
    let cos: f64 = c
        .query_one("SELECT sponsorship.cosine_similarity('[1,2]'::vector, '[2,4]'::vector)", &[])
        .unwrap()
        .get(0);
    assert!((cos - 1.0).abs() < 1e-9);
    assert_eq!(
        scalar_i64(&mut c, "SELECT sponsorship.embedding_dims(description_embedding)::bigint FROM sponsorship.events
                             WHERE description_embedding IS NOT NULL LIMIT 1"),
        384
    );
    // the per-pair score, for every pair, computed in workers, equals the serial one (in one
    // transaction: past events decay with now())
    let q = "SELECT e.id::text || s.id::text, p.score::text FROM sponsorship.events e CROSS JOIN sponsorship.sponsors s
               CROSS JOIN LATERAL sponsorship.fn_compute_match_score(e.id, s.id) p ORDER BY 1";
    let rows = |c: &mut Client| -> Vec<(String, String)> {
        c.query(q, &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect()
    };
    c.batch_execute("BEGIN").unwrap();
    let parallel = rows(&mut c);
    c.batch_execute("SET LOCAL force_parallel_mode = off").unwrap();
    let serial = rows(&mut c);
    c.batch_execute("COMMIT").unwrap();
    assert_eq!(parallel.len(), 20 * 15);
    assert_eq!(parallel, serial);
}

#[test]
fn a_full_rescore_answers_the_rows_pending_at_its_start_and_leaves_an_edit_made_meanwhile() {
    let mut db = TestDb::with_extension("rescore");
    small_marketplace(&mut db);
    let sponsor: String = scalar_string(&mut db.client, "SELECT md5('s1')::uuid::text");
    assert_eq!(
        scalar_i64(
            &mut db.client,
            "SELECT count(*) FROM sponsorship.fit_recalc_queue WHERE processed_at IS NULL"
        ),
        34
    );
    // An edit of sponsor 1, not yet committed, has touched its pending row when the rescore
    // starts; it commits while the rescore runs.
    let mut editor = db.connect();
    editor
        .batch_execute(&format!(
            "BEGIN; UPDATE sponsorship.sponsor_profiles SET annual_budget_cents = 123456 WHERE sponsor_id = '{sponsor}'"
        ))
        .unwrap();
    let mut rescorer = db.connect();
    let pid: i32 = rescorer
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let rescore = std::thread::spawn(move || -> i64 {
        rescorer
            .query_one("SELECT sponsorship.rescore_all_matches(3)", &[])
            .unwrap()
            .get(0)
    });
    // the rescore reaches the edited row and waits for the editor
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !scalar_bool(
        &mut db.client,
        &format!(
            "SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = {pid}"
        ),
    ) {
        assert!(std::time::Instant::now() < deadline, "the rescore never waited for the edit");
        std::thread::sleep(Duration::from_millis(50));
    }
    editor.batch_execute("COMMIT").unwrap();
    let written = rescore.join().unwrap();
    assert!(written >= 20 * 3, "{written} matches written");
    // every row pending at the start is answered, except the one the edit changed meanwhile
    let pending: Vec<(Option<String>, Option<String>)> = pending(&mut db.client);
    assert_eq!(
        pending,
        vec![(None, Some(sponsor.clone()))],
        "the edited sponsor's row stays pending"
    );
    // and draining it scores the edit
    assert_eq!(
        scalar_i64(
            &mut db.client,
            "SELECT sponsorship.update_sponsorship_matches(10)::bigint"
        ),
        1
    );
    assert_eq!(
        scalar_i64(
            &mut db.client,
            "SELECT count(*) FROM sponsorship.sponsorship_matches m,
                    LATERAL sponsorship.fn_compute_match_score(m.event_id, m.sponsor_id) p
              WHERE abs(p.score - m.score) > 0.00002"
        ),
        0
    );
}
