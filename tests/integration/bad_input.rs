//! Bad input across the SQL API: every call in the catalogue below gets a clear error with
//! the SQLSTATE it names, and afterwards no table holds a row more or less than before.
use sponsorship_integration_tests::*;

const ORG: &str = "00000000-0000-0000-0000-0000000000a1";
const EVENT: &str = "00000000-0000-0000-0000-0000000000e1";
const SPONSOR: &str = "00000000-0000-0000-0000-0000000000b1";
const PACKAGE: &str = "00000000-0000-0000-0000-0000000000f1";
const UNPAID: &str = "00000000-0000-0000-0000-00000000cc01";
const NOBODY: &str = "00000000-0000-0000-0000-00000000dead";

fn fixture() -> TestDb {
    let mut db = TestDb::with_extension("bad_input");
    db.client
        .batch_execute(&format!(
            "INSERT INTO sponsorship.organizations (id, name) VALUES ('{ORG}', 'Org');
             INSERT INTO sponsorship.payout_configurations (org_id, stripe_connect_account_id) VALUES ('{ORG}', 'acct_Bad');
             INSERT INTO sponsorship.events (id, org_id, title, start_at) VALUES ('{EVENT}', '{ORG}', 'Fest', now() + interval '5 days');
             INSERT INTO sponsorship.sponsors (id, name) VALUES ('{SPONSOR}', 'Brand');
             INSERT INTO sponsorship.sponsor_profiles (sponsor_id, annual_budget_cents) VALUES ('{SPONSOR}', 100000);
             INSERT INTO sponsorship.sponsorship_packages (id, event_id, title, price_cents) VALUES ('{PACKAGE}', '{EVENT}', 'Gold', 50000);
             INSERT INTO sponsorship.sponsorship_orders (id, package_id, sponsor_id, event_id, amount_cents)
             VALUES ('{UNPAID}', '{PACKAGE}', '{SPONSOR}', '{EVENT}', 50000);"
        ))
        .unwrap();
    db
}

/// Row counts of every table of the schema.
fn counts(c: &mut Client) -> Vec<(String, i64)> {
    let tables: Vec<String> = c
        .query(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'sponsorship'::regnamespace
                AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    tables
        .into_iter()
        .map(|t| {
            let n = scalar_i64(c, &format!("SELECT count(*) FROM sponsorship.{t}"));
            (t, n)
        })
        .collect()
}

#[test]
fn every_bad_call_is_refused_with_its_sqlstate_and_nothing_is_half_written() {
    let mut db = fixture();
    let c = &mut db.client;
    let huge = "x".repeat(20_001);
    let catalogue: Vec<(String, &str)> = vec![
        // fees
        (format!("SELECT sponsorship.calculate_platform_fee(NULL, '{ORG}')"), "22004"),
        (format!("SELECT sponsorship.calculate_platform_fee(100, NULL)"), "22004"),
        (format!("SELECT sponsorship.calculate_platform_fee(-1, '{ORG}')"), "22023"),
        (format!("SELECT sponsorship.calculate_platform_fee(100, '{NOBODY}')"), "P0002"),
        (format!("SELECT sponsorship.calculate_platform_fee(100, '{ORG}', 'XYZ')"), "22023"),
        (format!("SELECT sponsorship.calculate_platform_fee(100, '{ORG}', 'usd')"), "22023"),
        (format!("SELECT sponsorship.calculate_platform_fee(100, '{ORG}', '')"), "22023"),
        ("SELECT sponsorship.currency_exponent('EURO')".into(), "22023"),
        ("SELECT * FROM sponsorship.payout_stages(100, 200, 'USD', NULL, 'accepted')".into(), "22023"),
        ("SELECT * FROM sponsorship.payout_stages(100, 10, 'USD', '{\"stages\": \"all\"}', 'accepted')".into(), "22023"),
        // payouts
        ("SELECT sponsorship.queue_sponsorship_payout(NULL)".into(), "22004"),
        (format!("SELECT sponsorship.queue_sponsorship_payout('{NOBODY}')"), "P0002"),
        (format!("SELECT sponsorship.queue_sponsorship_payout('{UNPAID}')"), "55000"),
        (format!("SELECT sponsorship.queue_sponsorship_payout('{UNPAID}', 5000)"), "22023"),
        ("SELECT sponsorship.process_payout_queue(0)".into(), "22023"),
        ("SELECT sponsorship.process_payout_queue(1000000)".into(), "22023"),
        ("SELECT * FROM sponsorship.reconcile_payouts(interval '-1 hour')".into(), "22023"),
        ("SELECT sponsorship.queue_due_payouts(0)".into(), "22023"),
        // matching
        (format!("SELECT * FROM sponsorship.fn_compute_match_score('{NOBODY}', '{SPONSOR}')"), "P0002"),
        (format!("SELECT * FROM sponsorship.fn_compute_match_score('{EVENT}', '{NOBODY}')"), "P0002"),
        (format!("SELECT * FROM sponsorship.fn_compute_match_score(NULL, '{SPONSOR}')"), "22004"),
        (format!("SELECT * FROM sponsorship.get_sponsor_recommendations('{EVENT}', 0)"), "22023"),
        (format!("SELECT * FROM sponsorship.get_event_recommendations('{NOBODY}', 10)"), "P0002"),
        ("SELECT sponsorship.set_scoring_weights(0.5, 0.5, 0.5, 0, 0)".into(), "22023"),
        ("SELECT sponsorship.set_scoring_weights(-0.1, 0.5, 0.3, 0.2, 0.1)".into(), "22023"),
        ("SELECT sponsorship.set_scoring_weights('NaN', 0.25, 0.25, 0.25, 0.25)".into(), "22023"),
        ("SELECT sponsorship.set_scoring_weights(NULL, 0.25, 0.25, 0.25, 0.25)".into(), "22004"),
        ("SELECT sponsorship.update_sponsorship_matches(0)".into(), "22023"),
        ("SELECT sponsorship.rescore_all_matches(0)".into(), "22023"),
        (format!("SELECT * FROM sponsorship.fn_compute_match_score('{EVENT}', NULL)"), "22004"),
        (format!("SELECT * FROM sponsorship.semantic_sponsor_event_match('{NOBODY}', '{EVENT}')"), "P0002"),
        // embeddings, vectors and search
        ("SELECT sponsorship.cosine_similarity('[1,2]', '[1,2,3]')".into(), "22000"),
        // (pgvector's own input function refuses these, with data_exception)
        ("SELECT sponsorship.cosine_similarity('[1,NaN]', '[1,2]')".into(), "22000"),
        ("SELECT sponsorship.cosine_similarity('[1,Infinity]', '[1,2]')".into(), "22000"),
        ("SELECT sponsorship.find_similar_sponsors('[1,2,3]', 10, 0.5)".into(), "22000"),
        (format!("SELECT sponsorship.find_similar_events(sponsorship.embed('a'), 0, 0.5)"), "22023"),
        ("SELECT sponsorship.find_similar_events(sponsorship.embed('a'), 10, 1.5)".into(), "22023"),
        ("SELECT * FROM sponsorship.semantic_event_search('')".into(), "22023"),
        ("SELECT * FROM sponsorship.semantic_event_search(NULL)".into(), "22004"),
        ("SELECT * FROM sponsorship.semantic_event_search('music', p_limit => 0)".into(), "22023"),
        ("SELECT * FROM sponsorship.semantic_event_search('music', p_limit => 100000)".into(), "22023"),
        ("SELECT * FROM sponsorship.semantic_event_search('music', p_start_date => '2027-01-02', p_end_date => '2027-01-01')".into(), "22023"),
        ("SELECT * FROM sponsorship.semantic_sponsor_search('beer', p_budget_min => 500, p_budget_max => 100)".into(), "22023"),
        ("SELECT * FROM sponsorship.semantic_sponsor_search('beer', p_budget_min => -1)".into(), "22023"),
        (format!("SELECT * FROM sponsorship.semantic_event_search('{huge}')"), "22023"),
        ("SELECT sponsorship.backfill_embeddings(0)".into(), "22023"),
        // ROI
        ("SELECT sponsorship.evaluate_sponsorship_roi(NULL)".into(), "22004"),
        (format!("SELECT sponsorship.evaluate_sponsorship_roi('{NOBODY}')"), "P0002"),
        ("SELECT sponsorship.evaluate_completed_sponsorships(0)".into(), "22023"),
        ("SELECT sponsorship.roi_assess('{}')".into(), "22023"),
        ("SELECT sponsorship.roi_assess('[1,2]')".into(), "22023"),
        ("SELECT sponsorship.roi_assess('{\"currency\": \"USD\", \"cost_cents\": -5}')".into(), "22023"),
        // operations
        ("SELECT * FROM sponsorship.create_next_month_partitions(-1)".into(), "22023"),
        ("SELECT * FROM sponsorship.create_next_month_partitions(1000)".into(), "22023"),
        ("SELECT sponsorship.create_month_partition(NULL, current_date)".into(), "22004"),
        ("SELECT sponsorship.create_month_partition('sponsorship.events', current_date)".into(), "22023"),
        ("SELECT * FROM sponsorship.apply_partition_retention(-1)".into(), "22023"),
        ("SELECT * FROM sponsorship.apply_partition_retention(6, 'archive')".into(), "22023"),
        ("SELECT * FROM sponsorship.record_queue_health(-1)".into(), "22023"),
        ("SELECT sponsorship.run_cleanup(0)".into(), "22023"),
        ("SELECT sponsorship.prune_cron_history(interval '-1 day')".into(), "22023"),
        ("SELECT sponsorship.refresh_materialized_view('mv_nothing')".into(), "42P01"),
        ("SELECT sponsorship.refresh_materialized_view(NULL)".into(), "22004"),
        ("SELECT * FROM sponsorship.schedule_jobs()".into(), "55000"),
        // data the tables refuse
        (format!("INSERT INTO sponsorship.sponsorship_packages (event_id, title, price_cents) VALUES ('{EVENT}', 'X', -1)"), "23514"),
        (format!("INSERT INTO sponsorship.sponsorship_packages (event_id, title, price_cents, currency) VALUES ('{EVENT}', 'X', 1, 'usd')"), "23514"),
        (format!("INSERT INTO sponsorship.sponsorship_packages (event_id, title, price_cents) VALUES ('{EVENT}', '  ', 1)"), "23514"),
        (format!("INSERT INTO sponsorship.sponsorship_packages (event_id, title, price_cents, benefits) VALUES ('{EVENT}', 'X', 1, '{{nope')"), "22P02"),
        (format!("INSERT INTO sponsorship.sponsorship_packages (event_id, title, price_cents) VALUES ('{NOBODY}', 'X', 1)"), "23503"),
        (format!("INSERT INTO sponsorship.events (org_id, title, start_at, end_at) VALUES ('{ORG}', 'X', now(), now() - interval '1 day')"), "23514"),
        (format!("INSERT INTO sponsorship.events (org_id, title, start_at, lat, lng) VALUES ('{ORG}', 'X', now(), 91, 0)"), "23514"),
        (format!("INSERT INTO sponsorship.events (org_id, title, start_at, description) VALUES ('{ORG}', 'X', now(), '{huge}')"), "23514"),
        (format!("INSERT INTO sponsorship.event_audience_insights (event_id, age_segments) VALUES ('{EVENT}', '{{\"18-24\": 0.8, \"25-34\": 0.7}}')"), "23514"),
        (format!("INSERT INTO sponsorship.payout_configurations (org_id, platform_fee_bps) VALUES ('{NOBODY}', 100)"), "23503"),
        (format!("UPDATE sponsorship.payout_configurations SET platform_fee_bps = 10001 WHERE org_id = '{ORG}'"), "23514"),
        (format!("UPDATE sponsorship.payout_configurations SET min_fee_cents = 500, max_fee_cents = 100 WHERE org_id = '{ORG}'"), "23514"),
        (format!("UPDATE sponsorship.payout_configurations SET stripe_connect_account_id = 'not an account' WHERE org_id = '{ORG}'"), "23514"),
        (format!("UPDATE sponsorship.sponsorship_orders SET application_fee_cents = 60000 WHERE id = '{UNPAID}'"), "23514"),
        (format!("UPDATE sponsorship.sponsorship_orders SET status = 'shipped' WHERE id = '{UNPAID}'"), "23514"),
        (format!("INSERT INTO sponsorship.ticket_analytics (event_id) VALUES ('{EVENT}')"), "23514"),
        (format!("INSERT INTO sponsorship.ticket_analytics (event_id, views, revenue_cents) VALUES ('{EVENT}', 3, 100)"), "23514"),
        (format!("INSERT INTO sponsorship.event_impressions (event_id, viewer_key) VALUES ('{EVENT}', '')"), "23514"),
        (format!("UPDATE sponsorship.sponsor_profiles SET objectives_embedding = '[1,2,3]' WHERE sponsor_id = '{SPONSOR}'"), "22000"),
        // settings
        ("SET sponsorship.platform_fee_bps = 20000".into(), "22023"),
        ("SET sponsorship.platform_fee_bps = 'five'".into(), "22023"),
        ("SET sponsorship.partitions_ahead_months = -1".into(), "22023"),
        ("SET sponsorship.search_exact_below = -5".into(), "22023"),
        ("SET sponsorship.match_cache_mb = 1e12".into(), "22023"),
    ];
    assert!(catalogue.len() >= 60, "{} calls", catalogue.len());
    let before = counts(c);
    let mut wrong = Vec::new();
    for (sql, state) in &catalogue {
        match c.batch_execute(sql) {
            Ok(()) => wrong.push(format!("accepted: {sql}")),
            Err(e) => {
                let got = sqlstate(&e);
                let message = e
                    .as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_default();
                if got != *state {
                    wrong.push(format!("{got} (wanted {state}): {sql}\n    {message}"));
                } else if message.trim().is_empty() {
                    wrong.push(format!("no message: {sql}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} calls:\n{}",
        wrong.len(),
        catalogue.len(),
        wrong.join("\n")
    );
    assert_eq!(counts(c), before, "a refused call left rows behind");
}
