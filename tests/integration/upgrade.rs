//! Upgrades: a database on the previous version (0.1.0, its install script kept in
//! sql/archive/) is updated with `ALTER EXTENSION sponsorship UPDATE`; its data and API
//! survive, and it ends with the same objects, definitions and privileges as a fresh install.
use std::collections::BTreeMap;

use sponsorship_integration_tests::*;

const ORG: &str = "00000000-0000-0000-0000-0000000000a1";
const EVENT: &str = "00000000-0000-0000-0000-0000000000e1";
const SPONSOR: &str = "00000000-0000-0000-0000-0000000000b1";

/// Every object of the extension's schema, described by what defines it (no oids), keyed
/// by kind and name.
fn catalog(c: &mut Client) -> BTreeMap<String, String> {
    let queries = [
        // functions: signature, body, attributes, settings, privileges, comment
        "SELECT 'function ' || p.oid::regprocedure::text,
                concat_ws(' | ', pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), md5(p.prosrc),
                          p.proowner::regrole::text, p.prokind, p.provolatile, p.prosecdef,
                          p.proisstrict, p.proparallel, p.proconfig::text, p.proacl::text, l.lanname,
                          md5(COALESCE(obj_description(p.oid, 'pg_proc'), '')))
           FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
          WHERE p.pronamespace = 'sponsorship'::regnamespace",
        // relations: kind, RLS, privileges, comment
        "SELECT 'relation ' || c.relname,
                concat_ws(' | ', c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.relispartition,
                          c.relowner::regrole::text, c.relpersistence, c.reloptions::text, c.relreplident, c.relispopulated,
                          pg_get_expr(c.relpartbound, c.oid), c.relacl::text, md5(COALESCE(obj_description(c.oid, 'pg_class'), '')))
           FROM pg_class c WHERE c.relnamespace = 'sponsorship'::regnamespace AND c.relkind IN ('r','p','v','m','S','i')",
        "SELECT 'column ' || c.relname || '.' || a.attname,
                concat_ws(' | ', a.attnum, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                          pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, a.attacl::text,
                          md5(COALESCE(col_description(c.oid, a.attnum), '')))
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE c.relnamespace = 'sponsorship'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
            AND c.relkind IN ('r','p','v','m')",
        "SELECT 'constraint ' || c.relname || '.' || k.conname, pg_get_constraintdef(k.oid)
           FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
          WHERE c.relnamespace = 'sponsorship'::regnamespace",
        "SELECT 'index ' || i.relname, pg_get_indexdef(i.oid)
           FROM pg_class i WHERE i.relnamespace = 'sponsorship'::regnamespace AND i.relkind IN ('i', 'I')",
        "SELECT 'view ' || c.relname, md5(pg_get_viewdef(c.oid)) || ' ' || COALESCE(c.reloptions::text, '')
           FROM pg_class c WHERE c.relnamespace = 'sponsorship'::regnamespace AND c.relkind IN ('v', 'm')",
        "SELECT 'policy ' || c.relname || '.' || p.polname,
                concat_ws(' | ', p.polcmd, p.polpermissive, pg_get_expr(p.polqual, p.polrelid),
                          pg_get_expr(p.polwithcheck, p.polrelid),
                          (SELECT string_agg(CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END, ',' ORDER BY 1)
                             FROM unnest(p.polroles) r))
           FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
          WHERE c.relnamespace = 'sponsorship'::regnamespace",
        "SELECT 'trigger ' || c.relname || '.' || t.tgname, t.tgenabled::text || ' ' || pg_get_triggerdef(t.oid)
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          WHERE c.relnamespace = 'sponsorship'::regnamespace AND NOT t.tgisinternal",
        "SELECT 'event trigger ' || e.evtname, e.evtevent || ' ' || e.evtenabled::text || ' ' || e.evtfoid::regproc::text
           FROM pg_event_trigger e
           JOIN pg_depend d ON d.classid = 'pg_event_trigger'::regclass AND d.objid = e.oid AND d.deptype = 'e'
           JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'sponsorship'",
        "SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid), 'member'
           FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid
          WHERE x.extname = 'sponsorship' AND d.deptype = 'e'",
        "SELECT 'version', extversion FROM pg_extension WHERE extname = 'sponsorship'",
        "SELECT 'sequence ' || c.relname,
                concat_ws(' | ', format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement, q.seqmax, q.seqmin, q.seqcycle)
           FROM pg_sequence q JOIN pg_class c ON c.oid = q.seqrelid
          WHERE c.relnamespace = 'sponsorship'::regnamespace",
        "SELECT 'schema', concat_ws(' | ', n.nspowner::regrole::text, n.nspacl::text, obj_description(n.oid, 'pg_namespace'))
           FROM pg_namespace n WHERE n.nspname = 'sponsorship'",
        "SELECT 'comment ' || pg_describe_object(d.classoid, d.objoid, d.objsubid), md5(d.description)
           FROM pg_description d JOIN pg_depend x ON x.classid = d.classoid AND x.objid = d.objoid AND x.deptype = 'e'
           JOIN pg_extension e ON e.oid = x.refobjid AND e.extname = 'sponsorship'
          WHERE d.objsubid = 0",
    ];
    let mut out = BTreeMap::new();
    for q in queries {
        for r in c.query(q, &[]).unwrap_or_else(|e| panic!("{q}: {e:?}")) {
            let k: String = r.get(0);
            let v: Option<String> = r.get(1);
            assert!(
                out.insert(k.clone(), v.unwrap_or_default()).is_none(),
                "two objects named {k}"
            );
        }
    }
    out
}

#[test]
fn the_previous_version_updates_in_place_and_matches_a_fresh_install() {
    let mut old = TestDb::empty("upg_old");
    let c = &mut old.client;
    c.batch_execute(
        "SET client_min_messages = warning; CREATE EXTENSION sponsorship VERSION '0.1.0' CASCADE",
    )
    .unwrap();
    assert_eq!(
        scalar_string(
            c,
            "SELECT extversion FROM pg_extension WHERE extname = 'sponsorship'"
        ),
        "0.1.0"
    );
    assert!(
        scalar_bool(c, "SELECT to_regproc('sponsorship.health') IS NULL"),
        "0.1.0 is really the old version"
    );
    // data of 0.1.0, through its API
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.organizations (id, name) VALUES ('{ORG}', 'Org');
         INSERT INTO sponsorship.payout_configurations (org_id, stripe_connect_account_id, platform_fee_bps) VALUES ('{ORG}', 'acct_Old', 700);
         INSERT INTO sponsorship.events (id, org_id, title, category, city, country, start_at) VALUES
           ('{EVENT}', '{ORG}', 'Austin Beer Fest', 'food', 'Austin', 'USA', now() + interval '20 days');
         INSERT INTO sponsorship.event_audience_insights (event_id, attendee_count, engagement_score) VALUES ('{EVENT}', 900, 70);
         INSERT INTO sponsorship.sponsors (id, name, industry) VALUES ('{SPONSOR}', 'Brewer', 'Craft beer');
         INSERT INTO sponsorship.sponsor_profiles (sponsor_id, annual_budget_cents, regions, preferred_categories)
         VALUES ('{SPONSOR}', 5000000, '{{Austin}}', '{{food}}');
         INSERT INTO sponsorship.sponsorship_packages (id, event_id, title, price_cents, expected_reach) VALUES
           ('00000000-0000-0000-0000-0000000000f1', '{EVENT}', 'Gold', 250000, 1000);
         INSERT INTO sponsorship.event_impressions (event_id, sponsor_id, created_at)
         SELECT '{EVENT}', '{SPONSOR}', now() - interval '1 day' FROM generate_series(1, 25) g;
         INSERT INTO sponsorship.ticket_analytics (event_id, sponsor_id, tickets, revenue_cents, created_at)
         VALUES ('{EVENT}', '{SPONSOR}', 3, 4500, now() - interval '1 day');
         SELECT sponsorship.refresh_event_quality_scores();"
    ))
    .unwrap();
    let score_before = scalar_string(
        c,
        &format!(
            "SELECT score::text FROM sponsorship.fn_compute_match_score('{EVENT}', '{SPONSOR}')"
        ),
    );

    c.batch_execute("ALTER EXTENSION sponsorship UPDATE")
        .unwrap();
    assert_eq!(
        scalar_string(
            c,
            "SELECT extversion FROM pg_extension WHERE extname = 'sponsorship'"
        ),
        "0.2.0"
    );
    // the data survived and the API answers as before
    assert_eq!(
        scalar_i64(
            c,
            "SELECT count(*) FROM sponsorship.event_impressions WHERE viewer_key IS NULL"
        ),
        25
    );
    assert_eq!(
        scalar_i64(
            c,
            "SELECT views::bigint * 1000 + tickets FROM sponsorship.ticket_analytics"
        ),
        3,
        "old sales rows read as sales with no page views"
    );
    expect_error(
        c,
        &format!("INSERT INTO sponsorship.ticket_analytics (event_id) VALUES ('{EVENT}')"),
        "23514",
    );
    // the audit trail starts at the upgrade, with the fee setting in force
    assert_eq!(
        scalar_i64(c, "SELECT count(*) FROM sponsorship.audit_log"),
        1
    );
    assert_eq!(
        scalar_string(c, &format!("SELECT score::text FROM sponsorship.fn_compute_match_score('{EVENT}', '{SPONSOR}')")),
        score_before
    );
    assert_eq!(
        scalar_i64(
            c,
            &format!("SELECT sponsorship.calculate_platform_fee(100000, '{ORG}')")
        ),
        7000
    );
    // the new API works on the old data, and the new triggers audit it
    assert_eq!(
        scalar_i64(
            c,
            "SELECT count(*) FROM sponsorship.create_next_month_partitions() WHERE created"
        ),
        0
    );
    assert!(scalar_i64(c, "SELECT sponsorship.refresh_package_cards()") == 1);
    assert_eq!(
        scalar_i64(
            c,
            "SELECT event_views_30d FROM sponsorship.v_sponsorship_package_cards"
        ),
        25
    );
    assert!(scalar_i64(c, "SELECT count(*) FROM sponsorship.health()") > 10);
    c.batch_execute(&format!("UPDATE sponsorship.payout_configurations SET platform_fee_bps = 650 WHERE org_id = '{ORG}'"))
        .unwrap();
    assert_eq!(
        scalar_string(c, "SELECT object_type || ':' || action FROM sponsorship.audit_log ORDER BY id DESC LIMIT 1"),
        "payout_configuration:update"
    );

    // the same objects as a fresh install of the new version
    let mut fresh = TestDb::with_extension("upg_fresh");
    let upgraded = catalog(&mut old.client);
    let installed = catalog(&mut fresh.client);
    let mut differences = Vec::new();
    for (k, v) in &installed {
        match upgraded.get(k) {
            None => differences.push(format!("missing after the upgrade: {k}")),
            Some(u) if u != v => {
                differences.push(format!("differs: {k}\n  fresh:    {v}\n  upgraded: {u}"))
            }
            _ => {}
        }
    }
    for k in upgraded.keys().filter(|k| !installed.contains_key(*k)) {
        differences.push(format!("only after the upgrade: {k}"));
    }
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
    assert!(
        installed.len() > 500,
        "the comparison covers the schema ({} objects)",
        installed.len()
    );
}
