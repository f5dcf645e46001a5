use sponsorship_integration_tests::*;

#[test]
fn installs_on_a_fresh_database_with_cascade_and_drops_cleanly() {
    let mut db = TestDb::empty("install");
    db.client
        .batch_execute("SET client_min_messages = warning; CREATE EXTENSION sponsorship CASCADE")
        .unwrap();
    assert!(scalar_bool(
        &mut db.client,
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')"
    ));
    let (schema, relocatable): (String, bool) = {
        let row = db
            .client
            .query_one(
                "SELECT extnamespace::regnamespace::text, extrelocatable FROM pg_extension WHERE extname = 'sponsorship'",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(schema, "sponsorship");
    assert!(!relocatable, "the extension must not be relocatable");

    db.client
        .batch_execute("DROP EXTENSION sponsorship")
        .unwrap();
    // Postgres keeps the schema named by the control file (it contains the extension, so it
    // cannot be a member of it); nothing may be left inside it.
    let leftovers = scalar_i64(
        &mut db.client,
        "SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'sponsorship'::regnamespace)
              + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'sponsorship'::regnamespace)
              + (SELECT count(*) FROM pg_type WHERE typnamespace = 'sponsorship'::regnamespace)",
    );
    assert_eq!(
        leftovers, 0,
        "DROP EXTENSION leaves no relation, function or type behind"
    );
    assert_eq!(
        scalar_i64(
            &mut db.client,
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'event_impressions%' OR relname LIKE 'sponsorship_%'"
        ),
        0,
        "DROP EXTENSION leaves no tables or partitions behind"
    );
    // and it installs again in the same database
    db.client
        .batch_execute("CREATE EXTENSION sponsorship")
        .unwrap();
    assert_eq!(
        scalar_i64(
            &mut db.client,
            "SELECT count(*) FROM sponsorship.scoring_weights WHERE is_active"
        ),
        1
    );
}

#[test]
fn creates_the_supabase_roles_when_missing_and_keeps_existing_ones() {
    let mut db = TestDb::with_extension("roles");
    let n = scalar_i64(
        &mut db.client,
        "SELECT count(*) FROM pg_roles WHERE rolname IN ('anon','authenticated','service_role')",
    );
    assert_eq!(n, 3);
    assert!(!scalar_bool(
        &mut db.client,
        "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'anon'"
    ));
}

#[test]
fn works_with_pgvector_in_another_schema_as_on_supabase() {
    let mut db = TestDb::empty("extschema");
    db.client
        .batch_execute(
            "SET client_min_messages = warning;
             CREATE SCHEMA extensions;
             CREATE EXTENSION vector SCHEMA extensions;
             CREATE EXTENSION sponsorship;",
        )
        .unwrap();
    // The extension's vector columns use pgvector's type where pgvector lives.
    let typ = scalar_string(
        &mut db.client,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
          WHERE attrelid = 'sponsorship.events'::regclass AND attname = 'description_embedding'",
    );
    assert_eq!(typ, "extensions.vector(384)");

    // A caller whose search_path does not include `extensions` can still use every
    // vector function, and the views that use pgvector's operators.
    db.client
        .batch_execute(
            "SET search_path = public;
             INSERT INTO sponsorship.organizations (id, name) VALUES ('00000000-0000-0000-0000-00000000000a', 'Org');
             INSERT INTO sponsorship.events (id, org_id, title, start_at, description_embedding)
             VALUES ('00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-00000000000a', 'E', now(),
                     array_fill(0.5::real, ARRAY[384])::extensions.vector);
             INSERT INTO sponsorship.sponsors (id, name) VALUES ('00000000-0000-0000-0000-0000000000b1', 'S');
             INSERT INTO sponsorship.sponsor_profiles (sponsor_id, objectives_embedding)
             VALUES ('00000000-0000-0000-0000-0000000000b1', array_fill(0.25::real, ARRAY[384])::extensions.vector);
             INSERT INTO sponsorship.sponsorship_matches (event_id, sponsor_id, score)
             VALUES ('00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-0000000000b1', 0.5);",
        )
        .unwrap();
    let cos: f64 = db
        .client
        .query_one(
            "SELECT sponsorship.cosine_similarity(e.description_embedding, p.objectives_embedding)
               FROM sponsorship.events e, sponsorship.sponsor_profiles p",
            &[],
        )
        .unwrap()
        .get(0);
    assert!((cos - 1.0).abs() < 1e-9, "parallel vectors, cosine {cos}");
    let dims: i32 = db
        .client
        .query_one(
            "SELECT sponsorship.embedding_dims(sponsorship.normalize_embedding(description_embedding)) FROM sponsorship.events",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(dims, 384);
    let sim: f64 = db
        .client
        .query_one(
            "SELECT semantic_similarity::float8 FROM sponsorship.v_semantic_event_recommendations",
            &[],
        )
        .unwrap()
        .get(0);
    assert!((sim - 1.0).abs() < 1e-6);
    // search by meaning and nearest neighbours reach pgvector's operators and HNSW indexes
    let found: i64 = db
        .client
        .query_one(
            "SELECT (SELECT count(*) FROM sponsorship.semantic_event_search('anything at all'))
                  + (SELECT count(*) FROM sponsorship.find_similar_events(
                        (SELECT description_embedding FROM sponsorship.events), 5, 0.5))
                  + (SELECT count(*) FROM sponsorship.semantic_sponsor_search('anything at all'))",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(found, 3, "one event found twice, one sponsor once");
}

#[test]
fn every_function_pins_its_search_path_and_definer_functions_are_not_public() {
    let mut db = TestDb::with_extension("fnsec");
    let unpinned: Vec<String> = db
        .client
        .query(
            "SELECT p.oid::regprocedure::text FROM pg_proc p
              WHERE p.pronamespace = 'sponsorship'::regnamespace
                AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')
              ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // The documented exception (sql/90_finalize.sql): the per-row fee calculator, Rust that
    // resolves no name through the search_path.
    assert_eq!(
        unpinned,
        vec![
            "sponsorship.calculate_platform_fee(bigint,uuid)".to_string(),
            "sponsorship.calculate_platform_fee(bigint,uuid,text)".to_string()
        ],
        "functions without a pinned search_path"
    );
    // ... and is not SECURITY DEFINER.
    assert!(!scalar_bool(
        &mut db.client,
        "SELECT bool_or(prosecdef) FROM pg_proc WHERE proname = 'calculate_platform_fee'"
    ));

    let public_definers: Vec<String> = db
        .client
        .query(
            "SELECT p.oid::regprocedure::text FROM pg_proc p
              WHERE p.pronamespace = 'sponsorship'::regnamespace AND p.prosecdef
                AND has_function_privilege('public', p.oid, 'EXECUTE')",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        public_definers.is_empty(),
        "SECURITY DEFINER functions executable by PUBLIC: {public_definers:?}"
    );

    // Maintenance functions are for the service role only.
    assert!(!scalar_bool(
        &mut db.client,
        "SELECT has_function_privilege('authenticated', 'sponsorship.refresh_event_quality_scores()', 'EXECUTE')"
    ));
    assert!(scalar_bool(
        &mut db.client,
        "SELECT has_function_privilege('service_role', 'sponsorship.refresh_event_quality_scores()', 'EXECUTE')"
    ));
}

/// The install script does not adopt what another role prepared: a pre-created schema owned
/// by someone else, or one holding objects, is refused and nothing is installed.
#[test]
fn the_install_refuses_a_schema_someone_else_prepared() {
    let mut db = TestDb::empty("adopt");
    let c = &mut db.client;
    c.batch_execute(
        "DO $$ BEGIN CREATE ROLE sponsorship_squatter NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         CREATE SCHEMA sponsorship AUTHORIZATION sponsorship_squatter;",
    )
    .unwrap();
    let m = expect_error(
        c,
        "SET client_min_messages = warning; CREATE EXTENSION sponsorship CASCADE",
        "42501",
    );
    assert!(m.contains("belongs to sponsorship_squatter"), "{m}");
    assert!(scalar_bool(
        c,
        "SELECT NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'sponsorship')"
    ));
    // owned by the installer, but holding a function someone left there
    c.batch_execute(
        "DROP SCHEMA sponsorship; CREATE SCHEMA sponsorship;
         CREATE FUNCTION sponsorship.current_user_id() RETURNS uuid LANGUAGE sql AS 'SELECT NULL::uuid';",
    )
    .unwrap();
    let m = expect_error(
        c,
        "SET client_min_messages = warning; CREATE EXTENSION sponsorship CASCADE",
        "55000",
    );
    assert!(m.contains("function current_user_id"), "{m}");
    // an empty schema of the installer's (what DROP EXTENSION leaves) is fine
    c.batch_execute(
        "DROP FUNCTION sponsorship.current_user_id();
         SET client_min_messages = warning; CREATE EXTENSION sponsorship CASCADE;",
    )
    .unwrap();
    c.batch_execute("DROP EXTENSION sponsorship CASCADE; DROP SCHEMA sponsorship; DROP ROLE sponsorship_squatter;")
        .unwrap();
}
