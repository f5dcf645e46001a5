//! Embeddings inside Postgres (SPEC §6): the model against sentence-transformers' vectors,
//! the triggers and the backfill, and search by meaning.

use sponsorship_integration_tests::*;

/// Reference vectors computed with sentence-transformers (crates/minilm/reference/make_reference.py).
fn reference() -> Vec<(String, Vec<f64>)> {
    let raw = include_str!("../../crates/minilm/reference/embedding_reference.json");
    let doc: serde_json::Value = serde_json::from_str(raw).expect("reference json");
    doc["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["text"].as_str().expect("text").to_string(),
                i["vector"]
                    .as_array()
                    .expect("vector")
                    .iter()
                    .map(|x| x.as_f64().expect("number"))
                    .collect(),
            )
        })
        .collect()
}

fn parse_vector(text: &str) -> Vec<f64> {
    text.trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|x| x.trim().parse::<f64>().expect("a float"))
        .collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn embed(c: &mut Client, text: &str) -> Vec<f64> {
    let v: String = c
        .query_one("SELECT sponsorship.embed($1)::text", &[&text])
        .unwrap_or_else(|e| panic!("embed({text:?}): {e:?}"))
        .get(0);
    parse_vector(&v)
}

#[test]
fn embeddings_match_sentence_transformers_for_every_reference_sentence() {
    let mut db = TestDb::with_extension("embedref");
    let c = &mut db.client;
    let refs = reference();
    assert!(refs.len() >= 20, "at least 20 reference sentences");
    let mut worst = 1.0f64;
    for (text, want) in &refs {
        let got = embed(c, text);
        assert_eq!(got.len(), 384, "{text:?}");
        let norm: f64 = got.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{text:?} is not unit length: {norm}");
        let cos = cosine(&got, want);
        assert!(cos >= 0.999, "{text:?}: cosine {cos} to the reference");
        worst = worst.min(cos);
    }
    // the batch form gives the same vectors, in order, NULL for NULL
    let texts: Vec<Option<&str>> = refs
        .iter()
        .map(|(t, _)| Some(t.as_str()))
        .chain([None])
        .collect();
    let rows = c
        .query(
            "SELECT v::text FROM unnest(sponsorship.embed_batch($1)) WITH ORDINALITY AS u(v, n) ORDER BY n",
            &[&texts],
        )
        .unwrap();
    assert_eq!(rows.len(), refs.len() + 1);
    for (row, (text, want)) in rows.iter().zip(&refs) {
        let got = parse_vector(&row.get::<_, String>(0));
        assert!(cosine(&got, want) >= 0.999, "batch {text:?}");
    }
    assert!(rows.last().unwrap().get::<_, Option<String>>(0).is_none(), "NULL in, NULL out");
    eprintln!("worst cosine to sentence-transformers: {worst:.9}");
}

#[test]
fn long_text_is_truncated_to_256_tokens_and_bad_text_is_refused() {
    let mut db = TestDb::with_extension("embedlong");
    let c = &mut db.client;
    let words: Vec<String> = (0..600).map(|i| format!("word{}", i % 37)).collect();
    let long = words.join(" ");
    let longer = format!("{long} and then a completely different ending about volcanoes");
    // both are far beyond 256 tokens: the ending is never read
    assert!(cosine(&embed(c, &long), &embed(c, &longer)) > 0.999999);
    // NULL is NULL (strict), the empty string has an embedding
    assert!(c
        .query_one("SELECT sponsorship.embed(NULL) IS NULL", &[])
        .unwrap()
        .get::<_, bool>(0));
    assert_eq!(embed(c, "").len(), 384);
    // an enormous text is refused with a clear error, not tokenized for minutes
    let msg = expect_error(c, "SELECT sponsorship.embed(repeat('x', 2000000))", "54000");
    assert!(msg.contains("too long"), "{msg}");
}

#[test]
fn a_missing_or_broken_model_is_a_clear_error_naming_the_setting() {
    let mut db = TestDb::with_extension("embedmodel");
    let c = &mut db.client;
    c.batch_execute("SET sponsorship.model_path = '/nonexistent/model'").unwrap();
    let msg = expect_error(c, "SELECT sponsorship.embed('hello')", "58P01");
    assert!(msg.contains("sponsorship.model_path") && msg.contains("/nonexistent/model"), "{msg}");
    // a truncated weights file
    let dir = std::env::temp_dir().join(format!("broken-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = std::path::Path::new("/usr/local/share/sponsorship/all-MiniLM-L6-v2");
    for f in ["tokenizer.json", "config.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let weights = std::fs::read(src.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), &weights[..weights.len() / 3]).unwrap();
    for p in [&dir, &dir.join("tokenizer.json"), &dir.join("config.json"), &dir.join("model.safetensors")] {
        std::process::Command::new("chmod").arg("a+rX").arg(p).status().unwrap();
    }
    c.batch_execute(&format!("SET sponsorship.model_path = '{}'", dir.display())).unwrap();
    let msg = expect_error(c, "SELECT sponsorship.embed('hello')", "XX001");
    assert!(msg.contains("sponsorship.model_path"), "{msg}");
    // the right path again works in the same session
    c.batch_execute("RESET sponsorship.model_path").unwrap();
    assert_eq!(embed(c, "hello").len(), 384);
    std::fs::remove_dir_all(&dir).ok();
    // only a superuser may point the server at a file
    c.batch_execute("SET ROLE authenticated").unwrap();
    expect_error(c, "SET sponsorship.model_path = '/tmp'", "42501");
    c.batch_execute("RESET ROLE").unwrap();
}

const ORG: &str = "00000000-0000-0000-0000-00000000e001";

fn event_state(c: &mut Client, id: &str) -> (Option<String>, bool) {
    let r = c
        .query_one(
            &format!("SELECT description_embedding::text, description_embedding_stale FROM sponsorship.events WHERE id = '{id}'"),
            &[],
        )
        .unwrap();
    (r.get(0), r.get(1))
}

#[test]
fn triggers_mark_stale_text_and_the_backfill_embeds_it_keeping_supplied_vectors() {
    let mut db = TestDb::with_extension("embedtrig");
    let c = &mut db.client;
    let ev = "00000000-0000-0000-0000-00000000e101";
    let ev2 = "00000000-0000-0000-0000-00000000e102";
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.organizations (id, name) VALUES ('{ORG}', 'Org');
         INSERT INTO sponsorship.events (id, org_id, title, category, description, start_at)
         VALUES ('{ev}', '{ORG}', 'Harbour Jazz Night', 'music', 'Saxophones by the water', now() + interval '9 days');"
    ))
    .unwrap();
    // a new event waits for its embedding; nothing was computed in the insert
    assert_eq!(event_state(c, ev), (None, true));
    assert_eq!(scalar_i64(c, "SELECT sponsorship.backfill_embeddings(10)"), 1);
    let (first, stale) = event_state(c, ev);
    assert!(!stale);
    let want = embed(c, "Harbour Jazz Night. music. Saxophones by the water");
    assert!(cosine(&parse_vector(first.as_ref().unwrap()), &want) > 0.999999, "embedded from title, category, description");
    assert_eq!(
        scalar_string(c, &format!("SELECT sponsorship.event_embedding_text(title, category, description) FROM sponsorship.events WHERE id = '{ev}'")),
        "Harbour Jazz Night. music. Saxophones by the water"
    );
    // the text changes: the old embedding stays (never wiped) until the new one is computed
    c.batch_execute(&format!("UPDATE sponsorship.events SET description = 'Trumpets under the bridge' WHERE id = '{ev}'"))
        .unwrap();
    assert_eq!(event_state(c, ev), (first.clone(), true));
    // an edit of something else leaves it alone
    c.batch_execute(&format!("UPDATE sponsorship.events SET capacity = 300 WHERE id = '{ev}'")).unwrap();
    assert_eq!(event_state(c, ev), (first.clone(), true));
    assert_eq!(scalar_i64(c, "SELECT sponsorship.backfill_embeddings(10)"), 1);
    let (second, stale) = event_state(c, ev);
    assert!(!stale && second != first);
    // a write that supplies its own embedding keeps it, even when it changes the text too
    c.batch_execute(&format!(
        "UPDATE sponsorship.events SET title = 'Renamed', description_embedding = array_fill(0.5::real, ARRAY[384])::vector
          WHERE id = '{ev}';
         INSERT INTO sponsorship.events (id, org_id, title, start_at, description_embedding)
         VALUES ('{ev2}', '{ORG}', 'Supplied', now(), array_fill(0.25::real, ARRAY[384])::vector);"
    ))
    .unwrap();
    assert_eq!(scalar_i64(c, "SELECT sponsorship.backfill_embeddings(10)"), 0);
    assert!(scalar_bool(c, &format!(
        "SELECT description_embedding = array_fill(0.5::real, ARRAY[384])::vector AND NOT description_embedding_stale
           FROM sponsorship.events WHERE id = '{ev}'"
    )));
    assert!(scalar_bool(c, &format!(
        "SELECT description_embedding = array_fill(0.25::real, ARRAY[384])::vector FROM sponsorship.events WHERE id = '{ev2}'"
    )));

    // sponsor profiles: objectives and audience text; a profile without any text has no embedding
    c.batch_execute(
        "INSERT INTO sponsorship.sponsors (id, name) VALUES ('00000000-0000-0000-0000-00000000e201', 'Brew Co');
         INSERT INTO sponsorship.sponsor_profiles (sponsor_id, industry, brand_objectives, target_audience)
         VALUES ('00000000-0000-0000-0000-00000000e201', 'Craft beer',
                 '{\"description\": \"Pour our IPA at outdoor concerts\", \"goals\": [\"sampling\", \"brand_lift\"]}',
                 '{\"interests\": [\"music\", \"food_drink\"]}');",
    )
    .unwrap();
    assert_eq!(
        scalar_string(c, "SELECT sponsorship.sponsor_embedding_text(industry, brand_objectives, target_audience)
                            FROM sponsorship.sponsor_profiles WHERE sponsor_id = '00000000-0000-0000-0000-00000000e201'"),
        "Craft beer. Pour our IPA at outdoor concerts. sampling, brand lift. Audience: music, food drink"
    );
    assert_eq!(scalar_i64(c, "SELECT sponsorship.backfill_embeddings(10)"), 1);
    let rows = c
        .query("SELECT embedding, total, embedded, current, stale, without_text, coverage::float8
                  FROM sponsorship.embedding_coverage() ORDER BY embedding", &[])
        .unwrap();
    assert_eq!(rows.len(), 2);
    let p = &rows[1];
    assert_eq!(p.get::<_, String>(0), "sponsor_profiles.objectives_embedding");
    assert_eq!((p.get::<_, i64>(1), p.get::<_, i64>(3), p.get::<_, i64>(4), p.get::<_, i64>(5)), (1, 1, 0, 0));
    let r = &rows[0];
    assert_eq!(r.get::<_, String>(0), "events.description_embedding");
    assert_eq!((r.get::<_, i64>(1), r.get::<_, i64>(3), r.get::<_, i64>(4)), (2, 2, 0));
    assert_eq!(r.get::<_, f64>(6), 1.0);
    c.batch_execute(
        "UPDATE sponsorship.sponsor_profiles SET industry = NULL, brand_objectives = '{}', target_audience = '{}'
          WHERE sponsor_id = '00000000-0000-0000-0000-00000000e201'",
    )
    .unwrap();
    assert!(scalar_bool(c, "SELECT objectives_embedding IS NULL AND NOT objectives_embedding_stale
                              FROM sponsorship.sponsor_profiles WHERE sponsor_id = '00000000-0000-0000-0000-00000000e201'"));
    // bad batch sizes
    expect_error(c, "SELECT sponsorship.backfill_embeddings(0)", "22023");
}

#[test]
fn an_edit_landing_while_the_backfill_commits_leaves_the_row_stale_for_the_next_pass() {
    let mut db = TestDb::with_extension("embedrace");
    let mut other = db.connect();
    let c = &mut db.client;
    let ev = "00000000-0000-0000-0000-00000000e301";
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.organizations (id, name) VALUES ('{ORG}', 'Org');
         INSERT INTO sponsorship.events (id, org_id, title, start_at) VALUES ('{ev}', '{ORG}', 'First title', now());"
    ))
    .unwrap();
    // the backfill reads the text; before it commits another session changes it
    c.batch_execute("BEGIN").unwrap();
    assert_eq!(scalar_i64(c, "SELECT sponsorship.backfill_embeddings(10)"), 1);
    let other_tx = std::thread::spawn(move || {
        other
            .batch_execute(&format!("UPDATE sponsorship.events SET title = 'Second title' WHERE id = '{ev}'"))
            .unwrap();
        other
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    c.batch_execute("COMMIT").unwrap();
    other_tx.join().unwrap();
    // the committed embedding described the first title; the second title is still owed one
    assert!(event_state(c, ev).1, "still stale after the concurrent edit");
    assert_eq!(scalar_i64(c, "SELECT sponsorship.backfill_embeddings(10)"), 1);
    let (v, stale) = event_state(c, ev);
    assert!(!stale);
    assert!(cosine(&parse_vector(&v.unwrap()), &embed(c, "Second title")) > 0.999999);
}

/// Forty events in four themes, no two sharing a description, embedded.
fn themed_events(c: &mut Client) {
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.organizations (id, name) VALUES ('{ORG}', 'Org');
         INSERT INTO sponsorship.events (id, org_id, title, category, city, description, start_at)
         SELECT md5('ev' || g)::uuid, '{ORG}',
                (ARRAY['Riverside Brewery Fest', 'City Marathon', 'Quantum Computing Summit', 'Modern Ballet Gala'])[1 + g % 4]
                  || ' ' || g,
                (ARRAY['food_drink', 'sports', 'tech', 'arts'])[1 + g % 4],
                (ARRAY['Austin', 'Denver', 'Boston', 'Austin', 'Denver'])[1 + g % 5],
                (ARRAY['Pints of hazy IPA and stout from thirty local brewers',
                       'Runners race 42 kilometres through the historic streets',
                       'Researchers present qubits, error correction and new algorithms',
                       'Dancers perform a new choreography with a live orchestra'])[1 + g % 4],
                now() + (g || ' days')::interval
           FROM generate_series(1, 40) g;
         SELECT sponsorship.backfill_embeddings(100);"
    ))
    .unwrap();
}

#[test]
fn a_search_for_a_concept_finds_events_that_share_no_words_with_it() {
    let mut db = TestDb::with_extension("embedconcept");
    let c = &mut db.client;
    themed_events(c);
    for (query, theme) in [
        ("lager tasting evening", "Riverside Brewery Fest"),
        ("jogging competition", "City Marathon"),
        ("physics of future processors", "Quantum Computing Summit"),
    ] {
        let rows = c
            .query("SELECT event_title FROM sponsorship.semantic_event_search($1, p_limit => 5)", &[&query])
            .unwrap();
        assert_eq!(rows.len(), 5);
        for r in &rows {
            let title: String = r.get(0);
            assert!(title.starts_with(theme), "{query:?} found {title:?}");
        }
        // and the query shares no word with those events' text
        let text = scalar_string(c, &format!(
            "SELECT string_agg(DISTINCT lower(sponsorship.event_embedding_text(title, category, description)), ' ')
               FROM sponsorship.events WHERE title LIKE '{theme}%'"
        ));
        for w in query.split_whitespace() {
            assert!(!text.split(|ch: char| !ch.is_alphanumeric()).any(|t| t == w), "{w:?} appears in {text:?}");
        }
    }
}

#[test]
fn filtered_searches_return_full_pages_through_the_index_and_exactly() {
    let mut db = TestDb::with_extension("embedfilter");
    let c = &mut db.client;
    themed_events(c);
    // 16 of the 40 events are in Austin
    let keeps = |c: &mut Client, city: &str| {
        scalar_i64(c, &format!("SELECT count(*) FROM sponsorship.events WHERE lower(city) = lower('{city}')"))
    };
    let austin = keeps(c, "austin");
    assert_eq!(austin, 16);
    for exact_below in ["0", "2000"] {
        // 0: always through HNSW (iterative scan); 2000: exactly from the filtered rows
        c.batch_execute(&format!("SET sponsorship.search_exact_below = {exact_below}")).unwrap();
        let n = scalar_i64(c, "SELECT count(*) FROM sponsorship.semantic_event_search('live music', p_city => 'AUSTIN', p_limit => 10)");
        assert_eq!(n, 10, "a full page (search_exact_below = {exact_below})");
        let n = scalar_i64(c, "SELECT count(*) FROM sponsorship.semantic_event_search('live music', p_city => 'Austin', p_limit => 50)");
        assert_eq!(n, austin, "every row that passes, no more");
        let n = scalar_i64(c, "SELECT count(*) FROM sponsorship.semantic_event_search('beer', p_city => 'Austin', p_category => 'food_drink')");
        assert_eq!(n, scalar_i64(c, "SELECT count(*) FROM sponsorship.events WHERE city = 'Austin' AND category = 'food_drink'"));
        // results are ordered by relevance, and relevance is the cosine similarity
        let rows = c
            .query("SELECT relevance_score::float8 FROM sponsorship.semantic_event_search('stout beer', p_city => 'Denver', p_limit => 8)", &[])
            .unwrap();
        let rel: Vec<f64> = rows.iter().map(|r| r.get(0)).collect();
        assert!(rel.windows(2).all(|w| w[0] >= w[1]), "{rel:?}");
    }
    c.batch_execute("RESET sponsorship.search_exact_below").unwrap();
    // the date window and the tier filter
    let n = scalar_i64(c, "SELECT count(*) FROM sponsorship.semantic_event_search('anything', p_start_date => current_date + 10,
                                                                                p_end_date => current_date + 19, p_limit => 100)");
    assert_eq!(n, 10);
    // bad input
    expect_error(c, "SELECT * FROM sponsorship.semantic_event_search(NULL)", "22004");
    expect_error(c, "SELECT * FROM sponsorship.semantic_event_search('   ')", "22023");
    expect_error(c, "SELECT * FROM sponsorship.semantic_event_search('x', p_limit => 0)", "22023");
    expect_error(c, "SELECT * FROM sponsorship.semantic_event_search('x', p_quality_tier => 'gold')", "22023");
    expect_error(c, "SELECT * FROM sponsorship.semantic_event_search('x', p_start_date => '2030-01-02', p_end_date => '2030-01-01')", "22023");
}

#[test]
fn sponsor_search_and_nearest_neighbours_use_the_embeddings() {
    let mut db = TestDb::with_extension("embedsponsor");
    let c = &mut db.client;
    c.batch_execute(
        "INSERT INTO sponsorship.sponsors (id, name, industry)
         SELECT md5('sp' || g)::uuid, 'Sponsor ' || g, (ARRAY['Beverages', 'Software', 'Sportswear'])[1 + g % 3]
           FROM generate_series(1, 30) g;
         INSERT INTO sponsorship.sponsor_profiles (sponsor_id, annual_budget_cents, regions, brand_objectives)
         SELECT md5('sp' || g)::uuid, 100000 * g, CASE WHEN g % 5 = 0 THEN ARRAY['global'] ELSE ARRAY['Austin'] END,
                jsonb_build_object('description', (ARRAY['Sample our sparkling water at festivals',
                                                          'Recruit developers at engineering conferences',
                                                          'Put our running shoes on marathon finishers'])[1 + g % 3])
           FROM generate_series(1, 30) g;
         SELECT sponsorship.backfill_embeddings(100);",
    )
    .unwrap();
    let rows = c
        .query("SELECT industry, relevance_score::float8, annual_budget_cents
                  FROM sponsorship.semantic_sponsor_search('hiring programmers', p_limit => 5)", &[])
        .unwrap();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.get::<_, String>(0) == "Software"));
    // filters: budget range and regions (global matches every region)
    let n = scalar_i64(c, "SELECT count(*) FROM sponsorship.semantic_sponsor_search('drinks', p_budget_min => 1000000,
                                                                                   p_budget_max => 2000000, p_limit => 30)");
    assert_eq!(n, 11);
    let n = scalar_i64(c, "SELECT count(*) FROM sponsorship.semantic_sponsor_search('drinks', p_regions => ARRAY['Berlin'], p_limit => 30)");
    assert_eq!(n, 6, "only the sponsors targeting global");
    expect_error(c, "SELECT * FROM sponsorship.semantic_sponsor_search('x', p_budget_min => 5, p_budget_max => 1)", "22023");

    // nearest neighbours of a stored embedding: itself first, similarity 1
    let first = scalar_string(c, "SELECT sponsor_id::text FROM sponsorship.find_similar_sponsors(
                                    (SELECT objectives_embedding FROM sponsorship.sponsor_profiles WHERE sponsor_id = md5('sp3')::uuid), 10, 0.99)
                                   LIMIT 1");
    assert_eq!(first, scalar_string(c, "SELECT md5('sp3')::uuid::text"));
    assert_eq!(
        scalar_i64(c, "SELECT count(*) FROM sponsorship.find_similar_sponsors(sponsorship.embed('Recruit developers at engineering conferences'), 30, 0.99)"),
        10,
        "the ten identical objectives"
    );
    let msg = expect_error(c, "SELECT * FROM sponsorship.find_similar_sponsors('[1,2,3]'::vector)", "22000");
    assert!(msg.contains("3 dimensions") && msg.contains("384"), "{msg}");
    expect_error(c, "SELECT * FROM sponsorship.find_similar_events('[1,2,3]'::vector)", "22000");
    expect_error(c, "SELECT * FROM sponsorship.find_similar_events(sponsorship.embed('x'), 10, 2)", "22023");
}
