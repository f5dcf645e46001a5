//! The row level security matrix: every table of the extension × SELECT, INSERT, UPDATE,
//! DELETE × seven callers, each tried on a row of the caller's own side (organization A /
//! sponsor 1, where the members below belong) and on a row of the other side (organization B /
//! sponsor 2). Every cell runs in a transaction of its own that is rolled back.
//!
//! Callers: `anon`; `authenticated` as a stranger (member of nothing); the owner of sponsor 1;
//! a viewer, an editor and an admin of organization A; `service_role`.
//!
//! Outcomes: `+` the statement succeeds on the target row (sees it, or inserts / updates /
//! deletes it); `.` it succeeds but row level security hides the row (0 rows); `x` refused
//! (SQLSTATE 42501: no privilege, or a WITH CHECK violation); `!` refused by a trigger that
//! makes the change impossible for everyone (55000); `f` allowed by the policies but refused
//! because other rows depend on the row (23503: an organization with payouts, say).
//!
//! Cells worth a word: a member may always remove themselves (the org editor deletes their own
//! `org_members` row: `+.`); activations are created by the organizer, not the sponsor; raw
//! placement and ticket facts are the organizer's (sponsors read their figures through
//! `v_sponsorship_roi`); nobody but the service role deletes orders, and even it cannot while
//! payouts refer to them (`ff`); nobody writes the audit trail, its triggers do.
//!
//! An INSERT re-creates the target row: the row is saved and deleted by the superuser inside
//! the cell's transaction first, so that the only reason the caller's INSERT can fail is the
//! policy (or a trigger).

use sponsorship_integration_tests::*;

const ORG_A: &str = "00000000-0000-0000-0000-00000000000a";
const ORG_B: &str = "00000000-0000-0000-0000-00000000000b";
const S1: &str = "00000000-0000-0000-0000-0000000000b1";
const S2: &str = "00000000-0000-0000-0000-0000000000b2";
const A_VIEWER: &str = "10000000-0000-0000-0000-000000000001";
const A_EDITOR: &str = "10000000-0000-0000-0000-000000000003";
const A_ADMIN: &str = "10000000-0000-0000-0000-000000000002";
const B_ADMIN: &str = "10000000-0000-0000-0000-0000000000b2";
const S1_OWNER: &str = "20000000-0000-0000-0000-000000000001";
const S2_OWNER: &str = "20000000-0000-0000-0000-000000000002";
const S1_VIEWER: &str = "20000000-0000-0000-0000-000000000003";
const STRANGER: &str = "30000000-0000-0000-0000-000000000001";
// events (private, so that visibility is decided by membership) and packages
const EA: &str = "00000000-0000-0000-0000-0000000000a2";
const EB: &str = "00000000-0000-0000-0000-0000000000c2";
const PA: &str = "00000000-0000-0000-0000-0000000000f1";
const PB: &str = "00000000-0000-0000-0000-0000000000f2";
const OA: &str = "00000000-0000-0000-0000-0000000000d1";
const OB: &str = "00000000-0000-0000-0000-0000000000d2";

const CALLERS: [(&str, &str, Option<&str>); 7] = [
    ("anon", "anon", None),
    ("stranger", "authenticated", Some(STRANGER)),
    ("sponsor owner", "authenticated", Some(S1_OWNER)),
    ("org viewer", "authenticated", Some(A_VIEWER)),
    ("org editor", "authenticated", Some(A_EDITOR)),
    ("org admin", "authenticated", Some(A_ADMIN)),
    ("service_role", "service_role", None),
];

/// table, the own row, the other side's row, the harmless change an UPDATE makes, and the
/// expected outcomes: per verb (SELECT, INSERT, UPDATE, DELETE), per caller in CALLERS order,
/// two characters: own row, other side's row.
struct Spec {
    table: &'static str,
    own: String,
    foreign: String,
    set: &'static str,
    expect: [&'static str; 4],
}

fn specs() -> Vec<Spec> {
    let s = |table, own: String, foreign: String, set, expect| Spec {
        table,
        own,
        foreign,
        set,
        expect,
    };
    // Each line: SELECT, INSERT, UPDATE, DELETE; in a line, own/other pairs for
    //   anon, stranger, sponsor owner, org viewer, org editor, org admin, service_role.
    vec![
        s(
            "organizations",
            format!("id = '{ORG_A}'"),
            format!("id = '{ORG_B}'"),
            "name = name",
            [
                "++ ++ ++ ++ ++ ++ ++",
                "xx ++ ++ ++ ++ ++ ++",
                "xx .. .. .. .. +. ++",
                "xx .. .. .. .. .. ff",
            ],
        ),
        s(
            "org_members",
            format!("org_id = '{ORG_A}' AND user_id = '{A_EDITOR}'"),
            format!("org_id = '{ORG_B}' AND user_id = '{B_ADMIN}'"),
            "created_at = created_at",
            [
                "xx .. .. +. +. +. ++",
                "xx xx xx xx xx +x ++",
                "xx .. .. .. .. +. ++",
                "xx .. .. .. +. +. ++",
            ],
        ),
        s(
            "events",
            format!("id = '{EA}'"),
            format!("id = '{EB}'"),
            "title = title",
            [
                ".. .. .. +. +. +. ++",
                "xx xx xx xx +x +x ++",
                "xx .. .. .. +. +. ++",
                "xx .. .. .. .. f. ff",
            ],
        ),
        s(
            "event_audience_insights",
            format!("event_id = '{EA}'"),
            format!("event_id = '{EB}'"),
            "attendee_count = attendee_count",
            [
                ".. .. .. +. +. +. ++",
                "xx xx xx xx +x +x ++",
                "xx .. .. .. +. +. ++",
                "xx .. .. .. +. +. ++",
            ],
        ),
        s(
            "sponsorship_packages",
            format!("id = '{PA}'"),
            format!("id = '{PB}'"),
            "title = title",
            [
                ".. .. .. +. +. +. ++",
                "xx xx xx xx +x +x ++",
                "xx .. .. .. +. +. ++",
                "xx .. .. .. f. f. ff",
            ],
        ),
        s(
            "sponsors",
            format!("id = '{S1}'"),
            format!("id = '{S2}'"),
            "name = name",
            [
                "++ ++ ++ ++ ++ ++ ++",
                "xx ++ ++ ++ ++ ++ ++",
                "xx .. +. .. .. .. ++",
                "xx .. f. .. .. .. ff",
            ],
        ),
        s(
            "sponsor_members",
            format!("sponsor_id = '{S1}' AND user_id = '{S1_VIEWER}'"),
            format!("sponsor_id = '{S2}' AND user_id = '{S2_OWNER}'"),
            "created_at = created_at",
            [
                "xx .. +. .. .. .. ++",
                "xx xx +x xx xx xx ++",
                "xx .. +. .. .. .. ++",
                "xx .. +. .. .. .. ++",
            ],
        ),
        s(
            "sponsor_profiles",
            format!("sponsor_id = '{S1}'"),
            format!("sponsor_id = '{S2}'"),
            "industry = industry",
            [
                "++ ++ ++ ++ ++ ++ ++",
                "xx xx +x xx xx xx ++",
                "xx .. +. .. .. .. ++",
                "xx .. +. .. .. .. ++",
            ],
        ),
        s(
            "sponsorship_orders",
            format!("id = '{OA}'"),
            format!("id = '{OB}'"),
            "review_score = review_score",
            [
                "xx .. +. +. +. +. ++",
                "xx xx +x xx xx xx ++",
                "xx .. +. .. +. +. ++",
                "xx xx xx xx xx xx ff",
            ],
        ),
        s(
            "sponsorship_matches",
            format!("event_id = '{EA}' AND sponsor_id = '{S1}'"),
            format!("event_id = '{EB}' AND sponsor_id = '{S2}'"),
            "status = status",
            [
                "xx .. +. +. +. +. ++",
                "xx xx xx xx xx xx ++",
                "xx .. +. .. +. +. ++",
                "xx xx xx xx xx xx ++",
            ],
        ),
        s(
            "event_sponsorships",
            format!("order_id = '{OA}'"),
            format!("order_id = '{OB}'"),
            "deliverables = deliverables",
            [
                "xx .. +. +. +. +. ++",
                "xx xx xx xx +x +x ++",
                "xx .. +. .. +. +. ++",
                "xx xx xx xx xx xx ++",
            ],
        ),
        s(
            "event_impressions",
            format!("event_id = '{EA}'"),
            format!("event_id = '{EB}'"),
            "dwell_ms = dwell_ms",
            [
                "xx .. .. +. +. +. ++",
                "xx xx xx xx xx xx ++",
                "xx xx xx xx xx xx ++",
                "xx xx xx xx xx xx ++",
            ],
        ),
        s(
            "ticket_analytics",
            format!("event_id = '{EA}'"),
            format!("event_id = '{EB}'"),
            "tickets = tickets",
            [
                "xx .. .. +. +. +. ++",
                "xx xx xx xx xx xx ++",
                "xx xx xx xx xx xx ++",
                "xx xx xx xx xx xx ++",
            ],
        ),
        s(
            "event_stat_snapshots",
            format!("event_id = '{EA}'"),
            format!("event_id = '{EB}'"),
            "metric_value = metric_value",
            [
                "xx .. .. +. +. +. ++",
                "xx xx xx xx +x +x ++",
                "xx xx xx xx xx xx ++",
                "xx xx xx xx xx xx ++",
            ],
        ),
        s(
            "payout_configurations",
            format!("org_id = '{ORG_A}'"),
            format!("org_id = '{ORG_B}'"),
            "payout_schedule = payout_schedule",
            [
                "xx .. .. .. .. +. ++",
                "xx xx xx xx xx +x ++",
                "xx .. .. .. .. +. ++",
                "xx .. .. .. .. +. ++",
            ],
        ),
        s(
            "sponsorship_payouts",
            format!("order_id = '{OA}'"),
            format!("order_id = '{OB}'"),
            "failure_reason = failure_reason",
            [
                "xx .. .. .. .. +. ++",
                "xx xx xx xx xx xx ++",
                "xx xx xx xx xx xx ++",
                "xx xx xx xx xx xx ++",
            ],
        ),
        s(
            "audit_log",
            format!("org_id = '{ORG_A}'"),
            format!("org_id = '{ORG_B}'"),
            "context = context",
            [
                "xx .. .. .. .. +. ++",
                "xx xx xx xx xx xx xx",
                "xx xx xx xx xx xx xx",
                "xx xx xx xx xx xx xx",
            ],
        ),
        s(
            "scoring_weights",
            "is_active".into(),
            "NOT is_active".into(),
            "note = note",
            [
                "++ ++ ++ ++ ++ ++ ++",
                "xx xx xx xx xx xx ++",
                "xx xx xx xx xx xx ++",
                "xx xx xx xx xx xx ++",
            ],
        ),
    ]
    .into_iter()
    .chain(
        // queues and logs: the service role only
        [
            ("fit_recalc_queue", "last_error = last_error"),
            ("payout_queue", "last_error = last_error"),
            ("payout_runs", "detail = detail"),
            ("mv_refresh_log", "error = error"),
            ("queue_health_log", "problems = problems"),
            ("match_input_changes", "changed_at = changed_at"),
            ("match_input_pruned", "upto = upto"),
        ]
        .into_iter()
        .map(|(table, set)| Spec {
            table,
            own: "true".into(),
            foreign: "true".into(),
            set,
            expect: ["xx xx xx xx xx xx ++"; 4],
        }),
    )
    .collect()
}

fn fixture(c: &mut Client) {
    c.batch_execute(&format!(
        "SET client_min_messages = warning;
         INSERT INTO sponsorship.organizations (id, name) VALUES ('{ORG_A}', 'Org A'), ('{ORG_B}', 'Org B');
         INSERT INTO sponsorship.org_members (org_id, user_id, role) VALUES
           ('{ORG_A}', '{A_VIEWER}', 'viewer'), ('{ORG_A}', '{A_EDITOR}', 'editor'), ('{ORG_A}', '{A_ADMIN}', 'admin'),
           ('{ORG_B}', '{B_ADMIN}', 'admin');
         INSERT INTO sponsorship.events (id, org_id, title, start_at, end_at, visibility) VALUES
           ('{EA}', '{ORG_A}', 'A private', now() - interval '3 days', now() - interval '2 days', 'private'),
           ('{EB}', '{ORG_B}', 'B private', now() - interval '3 days', now() - interval '2 days', 'private');
         INSERT INTO sponsorship.event_audience_insights (event_id, attendee_count) VALUES ('{EA}', 100), ('{EB}', 100);
         INSERT INTO sponsorship.sponsorship_packages (id, event_id, title, price_cents, inventory) VALUES
           ('{PA}', '{EA}', 'A gold', 100000, 10), ('{PB}', '{EB}', 'B gold', 100000, 10);
         INSERT INTO sponsorship.sponsors (id, name) VALUES ('{S1}', 'Brand 1'), ('{S2}', 'Brand 2');
         INSERT INTO sponsorship.sponsor_members (sponsor_id, user_id, role) VALUES
           ('{S1}', '{S1_OWNER}', 'owner'), ('{S1}', '{S1_VIEWER}', 'viewer'), ('{S2}', '{S2_OWNER}', 'owner');
         INSERT INTO sponsorship.sponsor_profiles (sponsor_id, annual_budget_cents) VALUES ('{S1}', 1000000), ('{S2}', 1000000);
         INSERT INTO sponsorship.sponsorship_orders (id, package_id, sponsor_id, event_id, amount_cents, status, stripe_charge_id) VALUES
           ('{OA}', '{PA}', '{S1}', '{EA}', 100000, 'accepted', 'ch_a'), ('{OB}', '{PB}', '{S2}', '{EB}', 100000, 'accepted', 'ch_b');
         INSERT INTO sponsorship.sponsorship_matches (event_id, sponsor_id, score) VALUES ('{EA}', '{S1}', 0.5), ('{EB}', '{S2}', 0.5);
         INSERT INTO sponsorship.event_sponsorships (order_id, event_id, sponsor_id) VALUES
           ('{OA}', '{EA}', '{S1}'), ('{OB}', '{EB}', '{S2}');
         INSERT INTO sponsorship.event_impressions (event_id, sponsor_id, created_at) VALUES
           ('{EA}', '{S1}', now() - interval '2 days'), ('{EB}', '{S2}', now() - interval '2 days');
         INSERT INTO sponsorship.ticket_analytics (event_id, sponsor_id, tickets, revenue_cents, created_at) VALUES
           ('{EA}', '{S1}', 1, 1000, now() - interval '2 days'), ('{EB}', '{S2}', 1, 1000, now() - interval '2 days');
         INSERT INTO sponsorship.event_stat_snapshots (event_id, metric_key, metric_value) VALUES ('{EA}', 'k', 1), ('{EB}', 'k', 1);
         INSERT INTO sponsorship.payout_configurations (org_id, stripe_connect_account_id) VALUES
           ('{ORG_A}', 'acct_A'), ('{ORG_B}', 'acct_B');
         SELECT sponsorship.queue_sponsorship_payout('{OA}'), sponsorship.queue_sponsorship_payout('{OB}');
         INSERT INTO sponsorship.scoring_weights (version, budget_fit, audience_overlap, geo_fit, engagement_quality,
                                                  objectives_similarity, is_active)
         VALUES (99, 0.2, 0.2, 0.2, 0.2, 0.2, false);
         INSERT INTO sponsorship.payout_runs (token, source) VALUES (1, 'process_payout_queue');
         SELECT sponsorship.record_queue_health();
         SELECT sponsorship.refresh_event_quality_scores();"
    ))
    .unwrap();
    // the queues and logs have rows (the triggers and calls above wrote them)
    for t in [
        "fit_recalc_queue",
        "payout_queue",
        "payout_runs",
        "mv_refresh_log",
        "queue_health_log",
        "match_input_changes",
        "match_input_pruned",
        "audit_log",
    ] {
        assert!(
            scalar_i64(c, &format!("SELECT count(*) FROM sponsorship.{t}")) > 0,
            "{t} has rows"
        );
    }
}

fn outcome(result: Result<u64, postgres::Error>) -> String {
    match result {
        Ok(0) => ".".into(),
        Ok(_) => "+".into(),
        Err(e) => match sqlstate(&e).as_str() {
            "42501" => "x".into(),
            "55000" => "!".into(),
            // allowed by the policies, refused because other rows depend on the row
            "23503" => "f".into(),
            other => format!(
                "[{other}: {}]",
                e.as_db_error().map(|d| d.message()).unwrap_or("?")
            ),
        },
    }
}

/// One cell: the statement as the caller, in a transaction that is rolled back.
fn cell(c: &mut Client, spec: &Spec, verb: usize, caller: usize, target: &str) -> String {
    let t = format!("sponsorship.{}", spec.table);
    let (_, role, user) = CALLERS[caller];
    c.batch_execute("BEGIN").unwrap();
    if verb == 1 {
        // The columns an API caller may set (where callers may set none: every column the
        // service role may, but the identity).
        let cols: String = c
            .query(
                "SELECT COALESCE(
                    (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                      WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
                        AND has_column_privilege('authenticated', a.attrelid, a.attnum, 'INSERT')),
                    (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                      WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
                        AND a.attgenerated = '' AND a.attidentity = ''))",
                &[&t],
            )
            .unwrap()[0]
            .get(0);
        // Re-create the target row: saved and deleted by the superuser first; where other
        // rows depend on it, a copy under a new id is inserted instead.
        c.batch_execute(&format!(
            "CREATE TEMP TABLE saved ON COMMIT DROP AS SELECT * FROM {t} WHERE {target} LIMIT 1;
             GRANT SELECT ON saved TO PUBLIC; SAVEPOINT prep"
        ))
        .unwrap();
        if c.batch_execute(&format!("DELETE FROM {t} WHERE {target}"))
            .is_err()
        {
            c.batch_execute("ROLLBACK TO SAVEPOINT prep").unwrap();
            if scalar_bool(c, "SELECT atttypid = 'uuid'::regtype FROM pg_attribute WHERE attrelid = 'pg_temp.saved'::regclass AND attname = 'id'") {
                c.batch_execute("UPDATE pg_temp.saved SET id = gen_random_uuid()").unwrap();
            }
        }
        act_as_local(c, role, user);
        let r = c.execute(
            &format!("INSERT INTO {t} ({cols}) SELECT {cols} FROM pg_temp.saved"),
            &[],
        );
        let o = outcome(r);
        c.batch_execute("ROLLBACK").unwrap();
        return o;
    }
    act_as_local(c, role, user);
    let sql = match verb {
        0 => format!("SELECT 1 FROM {t} WHERE {target} LIMIT 1"),
        2 => format!("UPDATE {t} SET {} WHERE {target} RETURNING 1", spec.set),
        _ => format!("DELETE FROM {t} WHERE {target} RETURNING 1"),
    };
    let r = c.query(&sql, &[]).map(|rows| rows.len() as u64);
    let o = outcome(r);
    c.batch_execute("ROLLBACK").unwrap();
    o
}

/// act_as for one transaction (SET LOCAL), so the ROLLBACK ends it.
fn act_as_local(c: &mut Client, role: &str, user: Option<&str>) {
    let claims = match user {
        Some(u) => format!("{{\"sub\": \"{u}\", \"role\": \"{role}\"}}"),
        None => format!("{{\"role\": \"{role}\"}}"),
    };
    c.batch_execute(&format!(
        "SELECT set_config('request.jwt.claims', '{claims}', true); SET LOCAL ROLE {role}"
    ))
    .unwrap();
}

#[test]
fn every_table_verb_and_caller_gets_exactly_what_the_policies_promise() {
    let mut db = TestDb::with_extension("rlsmatrix");
    fixture(&mut db.client);
    let c = &mut db.client;
    let specs = specs();
    // every table of the extension is in the matrix, so a new one cannot slip by
    let tables: Vec<String> = c
        .query(
            "SELECT relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE nspname = 'sponsorship' AND relkind IN ('r', 'p') AND NOT relispartition ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut covered: Vec<String> = specs.iter().map(|s| s.table.to_string()).collect();
    covered.sort();
    assert_eq!(
        covered, tables,
        "the matrix covers exactly the extension's tables"
    );

    let verbs = ["SELECT", "INSERT", "UPDATE", "DELETE"];
    let mut mismatches = Vec::new();
    let mut observed_matrix = String::new();
    let mut cells = 0;
    for spec in &specs {
        for (v, verb) in verbs.iter().enumerate() {
            let expected: Vec<&str> = spec.expect[v].split(' ').collect();
            assert_eq!(
                expected.len(),
                CALLERS.len(),
                "{} {verb}: one pair per caller",
                spec.table
            );
            let mut line = Vec::new();
            for (k, (who, _, _)) in CALLERS.iter().enumerate() {
                let own = cell(c, spec, v, k, &spec.own);
                let foreign = cell(c, spec, v, k, &spec.foreign);
                cells += 2;
                let got = format!("{own}{foreign}");
                if got != expected[k] {
                    mismatches.push(format!(
                        "{} {verb} by {who}: expected {}, got {got}",
                        spec.table, expected[k]
                    ));
                }
                line.push(got);
            }
            observed_matrix.push_str(&format!(
                "{:<24} {verb:<6} {}\n",
                spec.table,
                line.join(" ")
            ));
        }
    }
    eprintln!("{cells} cells:\n{observed_matrix}");
    // For each table and verb someone is allowed and someone refused, except: the audit trail
    // is written by triggers only, so no one inserts, updates or deletes its rows; and public
    // marketplace data (organizations, sponsor listings and profiles, the scoring weights) is
    // readable by everyone (SPEC §8).
    const PUBLIC_READS: [&str; 4] = [
        "organizations",
        "sponsors",
        "sponsor_profiles",
        "scoring_weights",
    ];
    for spec in &specs {
        for (v, verb) in verbs.iter().enumerate() {
            let e = spec.expect[v];
            let refused = e.contains('x') || e.contains('.') || e.contains('!');
            let allowed = e.contains('+') || e.contains('f');
            assert!(
                refused || (v == 0 && PUBLIC_READS.contains(&spec.table)),
                "{} {verb}: a deny case",
                spec.table
            );
            assert!(
                allowed || (v > 0 && spec.table == "audit_log"),
                "{} {verb}: an allow case",
                spec.table
            );
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} cells differ:\n{}\n\nobserved:\n{observed_matrix}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
