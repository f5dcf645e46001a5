use sponsorship_integration_tests::*;

/// The documented tables of SPEC §2 and the columns callers depend on.
const TABLES: &[(&str, &[&str])] = &[
    ("organizations", &["id", "name", "created_at"]),
    ("org_members", &["org_id", "user_id", "role"]),
    ("sponsor_members", &["sponsor_id", "user_id", "role"]),
    (
        "sponsors",
        &[
            "id",
            "name",
            "industry",
            "company_size",
            "website_url",
            "logo_url",
            "contact_email",
            "brand_values",
            "created_at",
        ],
    ),
    (
        "sponsor_profiles",
        &[
            "sponsor_id",
            "industry",
            "annual_budget_cents",
            "currency",
            "brand_objectives",
            "target_audience",
            "activation_preferences",
            "preferred_categories",
            "regions",
            "objectives_embedding",
            "updated_at",
        ],
    ),
    (
        "events",
        &[
            "id",
            "org_id",
            "title",
            "description",
            "category",
            "city",
            "country",
            "lat",
            "lng",
            "start_at",
            "end_at",
            "visibility",
            "capacity",
            "description_embedding",
            "created_at",
            "updated_at",
        ],
    ),
    (
        "event_audience_insights",
        &[
            "event_id",
            "attendee_count",
            "avg_dwell_time_ms",
            "geo_distribution",
            "age_segments",
            "engagement_score",
            "ticket_conversion_rate",
            "social_mentions",
            "sentiment_score",
        ],
    ),
    (
        "event_stat_snapshots",
        &["event_id", "metric_key", "metric_value", "captured_at"],
    ),
    ("event_impressions", &["event_id", "created_at"]),
    ("ticket_analytics", &["event_id", "created_at"]),
    (
        "sponsorship_packages",
        &[
            "event_id",
            "tier",
            "title",
            "description",
            "price_cents",
            "currency",
            "inventory",
            "sold",
            "benefits",
            "package_type",
            "expected_reach",
            "is_active",
            "visibility",
        ],
    ),
    (
        "sponsorship_orders",
        &[
            "package_id",
            "sponsor_id",
            "event_id",
            "amount_cents",
            "currency",
            "status",
            "stripe_payment_intent_id",
            "stripe_charge_id",
            "stripe_transfer_id",
            "application_fee_cents",
            "payout_status",
            "milestone",
            "proof_assets",
            "review_score",
        ],
    ),
    (
        "event_sponsorships",
        &["status", "deliverables", "roi_summary"],
    ),
    (
        "payout_configurations",
        &[
            "org_id",
            "stripe_connect_account_id",
            "platform_fee_bps",
            "minimum_payout_cents",
            "payout_schedule",
            "auto_payout_enabled",
        ],
    ),
    (
        "payout_queue",
        &[
            "payout_id",
            "priority",
            "status",
            "attempts",
            "max_attempts",
            "next_attempt_at",
            "last_error",
        ],
    ),
    (
        "sponsorship_payouts",
        &[
            "order_id",
            "org_id",
            "gross_cents",
            "fee_cents",
            "amount_cents",
            "currency",
            "status",
            "idempotency_key",
            "stripe_transfer_id",
        ],
    ),
    (
        "sponsorship_matches",
        &[
            "event_id",
            "sponsor_id",
            "score",
            "overlap_metrics",
            "status",
            "computed_at",
            "model_version",
            "weights_version",
        ],
    ),
    (
        "fit_recalc_queue",
        &[
            "event_id",
            "sponsor_id",
            "priority",
            "reason",
            "enqueued_at",
            "attempts",
            "last_error",
            "processed_at",
        ],
    ),
    (
        "scoring_weights",
        &[
            "budget_fit",
            "audience_overlap",
            "geo_fit",
            "engagement_quality",
            "objectives_similarity",
            "is_active",
        ],
    ),
    (
        "mv_refresh_log",
        &[
            "view_name",
            "started_at",
            "finished_at",
            "duration_ms",
            "status",
            "error",
        ],
    ),
];

const VIEWS: &[&str] = &[
    "v_event_performance_summary",
    "v_sponsorship_package_cards",
    "v_sponsor_marketplace",
    "v_event_marketplace",
    "v_semantic_event_recommendations",
    "v_semantic_sponsor_recommendations",
    "v_marketplace_analytics",
];

#[test]
fn every_documented_table_exists_with_its_columns_and_a_comment() {
    let mut db = TestDb::with_extension("tables");
    for (table, columns) in TABLES {
        let has_comment = scalar_bool(
            &mut db.client,
            &format!(
                "SELECT obj_description('sponsorship.{table}'::regclass, 'pg_class') IS NOT NULL"
            ),
        );
        assert!(has_comment, "{table} has no COMMENT");
        for column in *columns {
            let n = scalar_i64(
                &mut db.client,
                &format!(
                    "SELECT count(*) FROM information_schema.columns
                      WHERE table_schema = 'sponsorship' AND table_name = '{table}' AND column_name = '{column}'"
                ),
            );
            assert_eq!(n, 1, "sponsorship.{table}.{column} is missing");
        }
    }
}

#[test]
fn every_view_exists_and_runs_with_the_callers_rights() {
    let mut db = TestDb::with_extension("views");
    for view in VIEWS {
        let invoker = scalar_bool(
            &mut db.client,
            &format!(
                "SELECT COALESCE('security_invoker=true' = ANY(reloptions), false) FROM pg_class
                  WHERE oid = 'sponsorship.{view}'::regclass"
            ),
        );
        assert!(invoker, "{view} must be security_invoker");
        // and it can be queried on an empty marketplace
        db.client
            .batch_execute(&format!("SELECT * FROM sponsorship.{view}"))
            .unwrap_or_else(|e| panic!("{view}: {e:?}"));
    }
    for mv in ["mv_event_quality_scores", "mv_sponsor_event_fit_scores"] {
        assert_eq!(
            scalar_string(
                &mut db.client,
                &format!(
                    "SELECT relkind::text FROM pg_class WHERE oid = 'sponsorship.{mv}'::regclass"
                )
            ),
            "m"
        );
    }
}

#[test]
fn row_level_security_is_enabled_on_every_table_and_partition() {
    let mut db = TestDb::with_extension("rlsall");
    let without: Vec<String> = db
        .client
        .query(
            "SELECT relname::text FROM pg_class
              WHERE relnamespace = 'sponsorship'::regnamespace AND relkind IN ('r','p') AND NOT relrowsecurity",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(without.is_empty(), "tables without RLS: {without:?}");
}

#[test]
fn raw_facts_are_partitioned_by_month_with_a_default_partition() {
    let mut db = TestDb::with_extension("parts");
    for parent in ["event_impressions", "ticket_analytics"] {
        let has_default = scalar_bool(
            &mut db.client,
            &format!(
                "SELECT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                   WHERE i.inhparent = 'sponsorship.{parent}'::regclass
                     AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT')"
            ),
        );
        assert!(has_default, "{parent} has no DEFAULT partition");
    }
    db.client
        .batch_execute(
            "INSERT INTO sponsorship.organizations (id, name) VALUES ('00000000-0000-0000-0000-00000000000a', 'Org');
             INSERT INTO sponsorship.events (id, org_id, title, start_at)
             VALUES ('00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-00000000000a', 'E', now());
             INSERT INTO sponsorship.event_impressions (event_id, created_at)
             VALUES ('00000000-0000-0000-0000-0000000000e1', now()),
                    ('00000000-0000-0000-0000-0000000000e1', now() - interval '2 months'),
                    ('00000000-0000-0000-0000-0000000000e1', now() + interval '20 years');",
        )
        .unwrap();
    let this_month = scalar_string(
        &mut db.client,
        "SELECT 'sponsorship.event_impressions_y' || to_char(now(), 'YYYY') || 'm' || to_char(now(), 'MM')",
    );
    let placed: Vec<String> = db
        .client
        .query(
            "SELECT tableoid::regclass::text FROM sponsorship.event_impressions ORDER BY created_at",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        placed[1], this_month,
        "a row of this month lands in this month's partition"
    );
    assert!(
        placed[0].starts_with("sponsorship.event_impressions_y"),
        "{}",
        placed[0]
    );
    assert_ne!(placed[0], this_month);
    assert_eq!(
        placed[2], "sponsorship.event_impressions_default",
        "far-future rows land in DEFAULT"
    );
}
