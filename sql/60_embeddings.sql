-- Embeddings kept current, and search by meaning (SPEC §6). `embed(text)` and
-- `embed_batch(text[])` are Rust (src/api/embedding.rs): all-MiniLM-L6-v2 inside the backend.

-- What each embedding is computed from. One definition, used by the triggers, the backfill
-- and the tests.
CREATE FUNCTION sponsorship.sponsor_embedding_text(p_industry text, p_brand_objectives jsonb, p_target_audience jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
    SELECT NULLIF(pg_catalog.btrim(pg_catalog.concat_ws('. ',
             NULLIF(pg_catalog.btrim(p_industry), ''),
             NULLIF(pg_catalog.btrim(p_brand_objectives ->> 'description'), ''),
             (SELECT pg_catalog.string_agg(pg_catalog.replace(g, '_', ' '), ', ')
                FROM pg_catalog.jsonb_array_elements_text(
                       CASE WHEN pg_catalog.jsonb_typeof(p_brand_objectives -> 'goals') = 'array'
                            THEN p_brand_objectives -> 'goals' END) g),
             (SELECT 'Audience: ' || pg_catalog.string_agg(pg_catalog.replace(i, '_', ' '), ', ')
                FROM pg_catalog.jsonb_array_elements_text(
                       CASE WHEN pg_catalog.jsonb_typeof(p_target_audience -> 'interests') = 'array'
                            THEN p_target_audience -> 'interests' END) i),
             NULLIF(pg_catalog.btrim(p_target_audience ->> 'description'), ''))), '')
$fn$;
COMMENT ON FUNCTION sponsorship.sponsor_embedding_text(text, jsonb, jsonb) IS
    'The text objectives_embedding is computed from: industry, brand_objectives.description and goals, '
    'target_audience interests and description. NULL when there is none.';

CREATE FUNCTION sponsorship.event_embedding_text(p_title text, p_category text, p_description text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
    SELECT NULLIF(pg_catalog.btrim(pg_catalog.concat_ws('. ',
             NULLIF(pg_catalog.btrim(p_title), ''),
             NULLIF(pg_catalog.btrim(pg_catalog.replace(p_category, '_', ' ')), ''),
             NULLIF(pg_catalog.btrim(p_description), ''))), '')
$fn$;
COMMENT ON FUNCTION sponsorship.event_embedding_text(text, text, text) IS
    'The text description_embedding is computed from: title, category and description. NULL when there is none.';

-- The triggers only mark; backfill_embeddings() (the worker, pg_cron or a direct call)
-- computes, so a bulk load never waits for the model. An embedding supplied in the same
-- write is kept; an old one stays until its replacement is computed (never wiped), except
-- when the text is gone altogether.
CREATE FUNCTION sponsorship.fn_mark_objectives_embedding() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_text text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.objectives_embedding IS DISTINCT FROM OLD.objectives_embedding THEN
        NEW.objectives_embedding_stale := false;        -- supplied by the caller
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE'
       AND NEW.industry IS NOT DISTINCT FROM OLD.industry
       AND NEW.brand_objectives IS NOT DISTINCT FROM OLD.brand_objectives
       AND NEW.target_audience IS NOT DISTINCT FROM OLD.target_audience THEN
        RETURN NEW;                                     -- the text did not change
    END IF;
    v_text := sponsorship.sponsor_embedding_text(NEW.industry, NEW.brand_objectives, NEW.target_audience);
    IF TG_OP = 'INSERT' AND NEW.objectives_embedding IS NOT NULL THEN
        NEW.objectives_embedding_stale := false;        -- supplied by the caller
    ELSIF v_text IS NULL THEN
        NEW.objectives_embedding := NULL;               -- nothing left to describe
        NEW.objectives_embedding_stale := false;
    ELSE
        NEW.objectives_embedding_stale := true;
    END IF;
    RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION sponsorship.fn_mark_objectives_embedding() IS
    'Trigger: marks objectives_embedding stale when its text changes (unless the write supplies one).';

CREATE FUNCTION sponsorship.fn_mark_description_embedding() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_text text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.description_embedding IS DISTINCT FROM OLD.description_embedding THEN
        NEW.description_embedding_stale := false;
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE'
       AND NEW.title IS NOT DISTINCT FROM OLD.title
       AND NEW.category IS NOT DISTINCT FROM OLD.category
       AND NEW.description IS NOT DISTINCT FROM OLD.description THEN
        RETURN NEW;
    END IF;
    v_text := sponsorship.event_embedding_text(NEW.title, NEW.category, NEW.description);
    IF TG_OP = 'INSERT' AND NEW.description_embedding IS NOT NULL THEN
        NEW.description_embedding_stale := false;
    ELSIF v_text IS NULL THEN
        NEW.description_embedding := NULL;
        NEW.description_embedding_stale := false;
    ELSE
        NEW.description_embedding_stale := true;
    END IF;
    RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION sponsorship.fn_mark_description_embedding() IS
    'Trigger: marks description_embedding stale when title, category or description change (unless the write supplies one).';

CREATE TRIGGER sponsor_profiles_mark_embedding BEFORE INSERT OR UPDATE ON sponsorship.sponsor_profiles
    FOR EACH ROW EXECUTE FUNCTION sponsorship.fn_mark_objectives_embedding();
CREATE TRIGGER events_mark_embedding BEFORE INSERT OR UPDATE ON sponsorship.events
    FOR EACH ROW EXECUTE FUNCTION sponsorship.fn_mark_description_embedding();

CREATE INDEX sponsor_profiles_embedding_stale_idx ON sponsorship.sponsor_profiles (sponsor_id)
    WHERE objectives_embedding_stale;
CREATE INDEX events_embedding_stale_idx ON sponsorship.events (id) WHERE description_embedding_stale;

-- Search by meaning: HNSW over cosine distance. A denser graph than pgvector's default
-- (m 16, ef_construction 64): marketplace texts come in tight clusters (many editions of
-- one event), which the default graph links too sparsely to walk between (recall@10 0.81
-- against 0.97 on the search benchmark's 100,000 events).
CREATE INDEX events_description_embedding_hnsw ON sponsorship.events
    USING hnsw (description_embedding vector_cosine_ops) WITH (m = 24, ef_construction = 128);
CREATE INDEX sponsor_profiles_objectives_embedding_hnsw ON sponsorship.sponsor_profiles
    USING hnsw (objectives_embedding vector_cosine_ops) WITH (m = 24, ef_construction = 128);

CREATE FUNCTION sponsorship.embedding_coverage()
RETURNS TABLE (embedding text, total bigint, embedded bigint, current bigint, stale bigint, without_text bigint,
               coverage numeric)
LANGUAGE sql STABLE
AS $fn$
    SELECT 'sponsor_profiles.objectives_embedding', count(*),
           count(*) FILTER (WHERE objectives_embedding IS NOT NULL),
           count(*) FILTER (WHERE objectives_embedding IS NOT NULL AND NOT objectives_embedding_stale),
           count(*) FILTER (WHERE objectives_embedding_stale),
           count(*) FILTER (WHERE sponsorship.sponsor_embedding_text(industry, brand_objectives, target_audience) IS NULL),
           round(count(*) FILTER (WHERE objectives_embedding IS NOT NULL AND NOT objectives_embedding_stale)::numeric
                 / NULLIF(count(*) FILTER (WHERE sponsorship.sponsor_embedding_text(industry, brand_objectives, target_audience)
                                                  IS NOT NULL), 0), 4)
      FROM sponsorship.sponsor_profiles
    UNION ALL
    SELECT 'events.description_embedding', count(*),
           count(*) FILTER (WHERE description_embedding IS NOT NULL),
           count(*) FILTER (WHERE description_embedding IS NOT NULL AND NOT description_embedding_stale),
           count(*) FILTER (WHERE description_embedding_stale),
           count(*) FILTER (WHERE sponsorship.event_embedding_text(title, category, description) IS NULL),
           round(count(*) FILTER (WHERE description_embedding IS NOT NULL AND NOT description_embedding_stale)::numeric
                 / NULLIF(count(*) FILTER (WHERE sponsorship.event_embedding_text(title, category, description)
                                                  IS NOT NULL), 0), 4)
      FROM sponsorship.events
$fn$;
COMMENT ON FUNCTION sponsorship.embedding_coverage() IS
    'Per embedding column: rows, rows with an embedding, with a current one, stale (waiting for backfill_embeddings()), '
    'without any text, and coverage = current / rows that have text.';

-- Checks shared by the search functions.
CREATE FUNCTION sponsorship.check_search_args(p_query_text text, p_limit integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $fn$
BEGIN
    IF p_query_text IS NULL THEN
        RAISE EXCEPTION 'p_query_text must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.btrim(p_query_text) = '' THEN
        RAISE EXCEPTION 'p_query_text is empty: say what to look for' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the model reads the first 256 tokens (about a thousand words) anyway
    IF pg_catalog.length(p_query_text) > 10000 THEN
        RAISE EXCEPTION 'p_query_text is % characters long; a search takes at most 10000', pg_catalog.length(p_query_text)
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 1000 THEN
        RAISE EXCEPTION 'p_limit must be between 1 and 1000, got %', p_limit USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$fn$;
COMMENT ON FUNCTION sponsorship.check_search_args(text, integer) IS 'Validates the query text and limit of a search.';

-- Settings for one search, returning what they were (search_settings_restore puts them
-- back): no parallel workers (a search reads a few thousand rows at most; starting a worker
-- costs more), and for an index walk pgvector's iterative scan, so filters applied after the
-- index still fill the page, with a candidate list of 200 (recall@10 0.99 on the benchmark's
-- 100,000 events, against 0.86 at pgvector's default of 40).
CREATE FUNCTION sponsorship.search_settings(p_hnsw boolean, p_limit integer) RETURNS text[]
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
    v_old text[];
BEGIN
    v_old := ARRAY[pg_catalog.current_setting('hnsw.iterative_scan', true),
                   pg_catalog.current_setting('hnsw.ef_search', true),
                   pg_catalog.current_setting('max_parallel_workers_per_gather')];
    PERFORM pg_catalog.set_config('max_parallel_workers_per_gather', '0', true);
    IF p_hnsw THEN
        PERFORM pg_catalog.set_config('hnsw.iterative_scan', 'relaxed_order', true);
        PERFORM pg_catalog.set_config('hnsw.ef_search', GREATEST(200, LEAST(1000, p_limit * 4))::text, true);
    END IF;
    RETURN v_old;
END
$fn$;
COMMENT ON FUNCTION sponsorship.search_settings(boolean, integer) IS
    'Sets the planner and HNSW settings of one search and returns the previous ones.';

CREATE FUNCTION sponsorship.search_settings_restore(p_old text[]) RETURNS void
LANGUAGE plpgsql VOLATILE
AS $fn$
BEGIN
    PERFORM pg_catalog.set_config('hnsw.iterative_scan', COALESCE(p_old[1], 'off'), true);
    PERFORM pg_catalog.set_config('hnsw.ef_search', COALESCE(p_old[2], '40'), true);
    PERFORM pg_catalog.set_config('max_parallel_workers_per_gather', p_old[3], true);
END
$fn$;
COMMENT ON FUNCTION sponsorship.search_settings_restore(text[]) IS 'Restores what search_settings() returned.';

-- The filters of semantic_event_search as a WHERE clause over events e and quality scores
-- q, naming only the filters given (so every call is planned for its own filters); the
-- values are $3..$7.
CREATE FUNCTION sponsorship.event_search_filter(p_category text, p_city text, p_start_date date, p_end_date date,
                                                p_quality_tier text)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $fn$
    SELECT 'e.description_embedding IS NOT NULL'
        || CASE WHEN p_category IS NOT NULL THEN ' AND lower(e.category) = lower($3)' ELSE '' END
        || CASE WHEN p_city IS NOT NULL THEN ' AND lower(e.city) = lower($4)' ELSE '' END
        || CASE WHEN p_start_date IS NOT NULL THEN ' AND e.start_at >= $5' ELSE '' END
        || CASE WHEN p_end_date IS NOT NULL THEN ' AND e.start_at < $6 + 1' ELSE '' END
        || CASE WHEN p_quality_tier IS NOT NULL THEN ' AND q.quality_tier = $7' ELSE '' END
$fn$;
COMMENT ON FUNCTION sponsorship.event_search_filter(text, text, date, date, text) IS
    'The WHERE clause of an event search for the filters given.';

CREATE FUNCTION sponsorship.semantic_event_search(p_query_text text, p_category text DEFAULT NULL,
                                                  p_city text DEFAULT NULL, p_start_date date DEFAULT NULL,
                                                  p_end_date date DEFAULT NULL, p_quality_tier text DEFAULT NULL,
                                                  p_limit integer DEFAULT 20)
RETURNS TABLE (event_id uuid, event_title text, category text, start_at timestamptz, city text,
               quality_score numeric, match_score numeric, relevance_score numeric)
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
    v_query    vector;
    v_where    text;
    v_from     text := 'sponsorship.events e';
    v_below    integer;
    v_filtered bigint;
    v_old      text[];
    v_ids      uuid[];
    v_dist     float8[];
BEGIN
    PERFORM sponsorship.check_search_args(p_query_text, p_limit);
    IF p_start_date > p_end_date THEN
        RAISE EXCEPTION 'p_start_date (%) is after p_end_date (%)', p_start_date, p_end_date
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_quality_tier IS NOT NULL AND p_quality_tier NOT IN ('premium', 'high', 'medium', 'low') THEN
        RAISE EXCEPTION 'p_quality_tier must be premium, high, medium or low, got %', p_quality_tier
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_query := sponsorship.embed(p_query_text);
    -- (read after embed(): the first call of the library in a session defines its settings)
    v_below := pg_catalog.current_setting('sponsorship.search_exact_below')::int;
    v_where := sponsorship.event_search_filter(p_category, p_city, p_start_date, p_end_date, p_quality_tier);
    IF p_quality_tier IS NOT NULL THEN
        v_from := v_from || ' JOIN sponsorship.event_quality_scores q ON q.event_id = e.id';
    END IF;

    -- Filters that keep few rows are answered exactly from those rows (cheap, where an
    -- index walk would have to go far to find them); the rest through HNSW with iterative
    -- scans, and exactly after all if the index ran out before the page was full.
    IF v_below > 0 AND COALESCE(p_category, p_city, p_start_date::text, p_end_date::text, p_quality_tier) IS NOT NULL THEN
        EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %s WHERE %s LIMIT %s) x', v_from, v_where, v_below)
           INTO v_filtered USING v_query, p_limit, p_category, p_city, p_start_date, p_end_date, p_quality_tier;
    END IF;
    IF v_filtered IS NULL OR v_filtered >= v_below THEN
        v_old := sponsorship.search_settings(true, p_limit);
        -- the iterative scan returns rows in roughly nearest-first order: take more than
        -- the page and keep the nearest
        EXECUTE format('SELECT array_agg(id ORDER BY d, id), array_agg(d ORDER BY d, id) FROM (
                          SELECT c.id, c.d FROM (
                            SELECT e.id, e.description_embedding <=> $1 AS d FROM %s WHERE %s
                             ORDER BY e.description_embedding <=> $1 LIMIT $8) c
                           ORDER BY c.d, c.id LIMIT $2) h', v_from, v_where)
           INTO v_ids, v_dist
          USING v_query, p_limit, p_category, p_city, p_start_date, p_end_date, p_quality_tier, LEAST(1000, p_limit * 4);
        PERFORM sponsorship.search_settings_restore(v_old);
    END IF;
    IF v_filtered < v_below OR COALESCE(array_length(v_ids, 1), 0) < p_limit THEN
        v_old := sponsorship.search_settings(false, p_limit);
        EXECUTE format('SELECT array_agg(id ORDER BY d, id), array_agg(d ORDER BY d, id) FROM (
                          SELECT e.id, (e.description_embedding <=> $1) + 0 AS d FROM %s WHERE %s
                           ORDER BY 2 LIMIT $2) h', v_from, v_where)
           INTO v_ids, v_dist USING v_query, p_limit, p_category, p_city, p_start_date, p_end_date, p_quality_tier;
        PERFORM sponsorship.search_settings_restore(v_old);
    END IF;

    RETURN QUERY
    SELECT e.id, e.title, e.category, e.start_at, e.city, round(q.final_quality_score::numeric, 5),
           round((0.85 * GREATEST(0, 1 - h.d) + 0.15 * COALESCE(q.final_quality_score, 0.5))::numeric, 5),
           round((1 - h.d)::numeric, 5)
      FROM unnest(v_ids, v_dist) WITH ORDINALITY AS h(id, d, n)
      JOIN sponsorship.events e ON e.id = h.id
      LEFT JOIN sponsorship.event_quality_scores q ON q.event_id = e.id
     ORDER BY h.n;
END
$fn$;
COMMENT ON FUNCTION sponsorship.semantic_event_search(text, text, text, date, date, text, integer) IS
    'Events by meaning: embeds the query and ranks by cosine similarity (HNSW with iterative scans; exactly when the '
    'filters keep fewer than sponsorship.search_exact_below rows or the index runs out), filtered by category, city, '
    'start date range and quality tier; relevance_score = cosine similarity, match_score = 0.85 relevance + 0.15 '
    'quality. Returns p_limit rows whenever that many events pass the filters.';

-- The filters of semantic_sponsor_search over sponsors s and profiles p; values $3..$6.
CREATE FUNCTION sponsorship.sponsor_search_filter(p_industry text, p_budget_min bigint, p_budget_max bigint,
                                                  p_regions text[])
RETURNS text
LANGUAGE sql IMMUTABLE
AS $fn$
    SELECT 'p.objectives_embedding IS NOT NULL'
        || CASE WHEN p_industry IS NOT NULL
                THEN ' AND lower(COALESCE(p.industry, s.industry)) = lower($3)' ELSE '' END
        || CASE WHEN p_budget_min IS NOT NULL THEN ' AND p.annual_budget_cents >= $4' ELSE '' END
        || CASE WHEN p_budget_max IS NOT NULL THEN ' AND p.annual_budget_cents <= $5' ELSE '' END
        || CASE WHEN p_regions IS NOT NULL
                THEN ' AND EXISTS (SELECT 1 FROM unnest(p.regions) r WHERE lower(btrim(r)) = ''global'''
                  || ' OR lower(btrim(r)) = ANY (SELECT lower(btrim(x)) FROM unnest($6) x))' ELSE '' END
$fn$;
COMMENT ON FUNCTION sponsorship.sponsor_search_filter(text, bigint, bigint, text[]) IS
    'The WHERE clause of a sponsor search for the filters given.';

CREATE FUNCTION sponsorship.semantic_sponsor_search(p_query_text text, p_industry text DEFAULT NULL,
                                                    p_budget_min bigint DEFAULT NULL, p_budget_max bigint DEFAULT NULL,
                                                    p_regions text[] DEFAULT NULL, p_limit integer DEFAULT 20)
RETURNS TABLE (sponsor_id uuid, sponsor_name text, industry text, annual_budget_cents bigint, match_score numeric,
               relevance_score numeric)
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
    v_query    vector;
    v_where    text;
    v_from     text := 'sponsorship.sponsor_profiles p JOIN sponsorship.sponsors s ON s.id = p.sponsor_id';
    v_below    integer;
    v_filtered bigint;
    v_old      text[];
    v_ids      uuid[];
    v_dist     float8[];
BEGIN
    PERFORM sponsorship.check_search_args(p_query_text, p_limit);
    IF p_budget_min < 0 OR p_budget_max < 0 THEN
        RAISE EXCEPTION 'budgets are non-negative minor units' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_budget_min > p_budget_max THEN
        RAISE EXCEPTION 'p_budget_min (%) is above p_budget_max (%)', p_budget_min, p_budget_max
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_query := sponsorship.embed(p_query_text);
    -- (read after embed(): the first call of the library in a session defines its settings)
    v_below := pg_catalog.current_setting('sponsorship.search_exact_below')::int;
    v_where := sponsorship.sponsor_search_filter(p_industry, p_budget_min, p_budget_max, p_regions);

    IF v_below > 0 AND COALESCE(p_industry, p_budget_min::text, p_budget_max::text, p_regions::text) IS NOT NULL THEN
        EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %s WHERE %s LIMIT %s) x', v_from, v_where, v_below)
           INTO v_filtered USING v_query, p_limit, p_industry, p_budget_min, p_budget_max, p_regions;
    END IF;
    IF v_filtered IS NULL OR v_filtered >= v_below THEN
        v_old := sponsorship.search_settings(true, p_limit);
        EXECUTE format('SELECT array_agg(id ORDER BY d, id), array_agg(d ORDER BY d, id) FROM (
                          SELECT c.id, c.d FROM (
                            SELECT p.sponsor_id AS id, p.objectives_embedding <=> $1 AS d FROM %s WHERE %s
                             ORDER BY p.objectives_embedding <=> $1 LIMIT $7) c
                           ORDER BY c.d, c.id LIMIT $2) h', v_from, v_where)
           INTO v_ids, v_dist
          USING v_query, p_limit, p_industry, p_budget_min, p_budget_max, p_regions, LEAST(1000, p_limit * 4);
        PERFORM sponsorship.search_settings_restore(v_old);
    END IF;
    IF v_filtered < v_below OR COALESCE(array_length(v_ids, 1), 0) < p_limit THEN
        v_old := sponsorship.search_settings(false, p_limit);
        EXECUTE format('SELECT array_agg(id ORDER BY d, id), array_agg(d ORDER BY d, id) FROM (
                          SELECT p.sponsor_id AS id, (p.objectives_embedding <=> $1) + 0 AS d FROM %s WHERE %s
                           ORDER BY 2 LIMIT $2) h', v_from, v_where)
           INTO v_ids, v_dist USING v_query, p_limit, p_industry, p_budget_min, p_budget_max, p_regions;
        PERFORM sponsorship.search_settings_restore(v_old);
    END IF;

    -- match_score adds what the sponsor could spend on one event (a quarter of the annual
    -- budget, as the matcher assumes) against a 25,000-unit reference, saturating.
    RETURN QUERY
    SELECT s.id, s.name, COALESCE(p.industry, s.industry), p.annual_budget_cents,
           round((0.85 * GREATEST(0, 1 - h.d)
                  + 0.15 * COALESCE(LEAST(1, p.annual_budget_cents * 0.25 / 2500000.0), 0.5))::numeric, 5),
           round((1 - h.d)::numeric, 5)
      FROM unnest(v_ids, v_dist) WITH ORDINALITY AS h(id, d, n)
      JOIN sponsorship.sponsors s ON s.id = h.id
      JOIN sponsorship.sponsor_profiles p ON p.sponsor_id = s.id
     ORDER BY h.n;
END
$fn$;
COMMENT ON FUNCTION sponsorship.semantic_sponsor_search(text, text, bigint, bigint, text[], integer) IS
    'Sponsors by meaning of their objectives: embeds the query and ranks by cosine similarity (HNSW with iterative '
    'scans, or exactly for selective filters), filtered by industry, annual budget range (minor units) and regions '
    '(a sponsor targeting global matches every region); relevance_score = cosine similarity, match_score = 0.85 '
    'relevance + 0.15 budget capacity.';

-- Nearest neighbours of a given vector (the old functions, now with a clear dimension check).
CREATE FUNCTION sponsorship.check_embedding_arg(p_vector vector, p_limit integer, p_threshold float8) RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $fn$
BEGIN
    IF p_vector IS NULL THEN
        RAISE EXCEPTION 'the embedding must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF vector_dims(p_vector) <> 384 THEN
        RAISE EXCEPTION 'the embedding has % dimensions; stored embeddings have 384 (all-MiniLM-L6-v2)',
              vector_dims(p_vector)
              USING ERRCODE = 'data_exception', HINT = 'Compute it with sponsorship.embed(text).';
    END IF;
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 1000 THEN
        RAISE EXCEPTION 'p_limit must be between 1 and 1000, got %', p_limit USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_threshold IS NULL OR p_threshold <> p_threshold OR p_threshold < -1 OR p_threshold > 1 THEN
        RAISE EXCEPTION 'p_threshold must be a similarity between -1 and 1, got %', p_threshold
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$fn$;
COMMENT ON FUNCTION sponsorship.check_embedding_arg(vector, integer, float8) IS
    'Validates the vector, limit and similarity threshold of find_similar_*.';

CREATE FUNCTION sponsorship.find_similar_sponsors(p_objectives_embedding vector, p_limit integer DEFAULT 10,
                                                  p_threshold float8 DEFAULT 0.7)
RETURNS TABLE (sponsor_id uuid, similarity_score numeric, sponsor_name text, industry text)
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
    v_old text[];
BEGIN
    PERFORM sponsorship.check_embedding_arg(p_objectives_embedding, p_limit, p_threshold);
    v_old := sponsorship.search_settings(true, p_limit);
    RETURN QUERY
    SELECT h.sponsor_id, round((1 - h.d)::numeric, 5), s.name, COALESCE(h.industry, s.industry)
      FROM (SELECT p.sponsor_id, p.industry, p.objectives_embedding <=> p_objectives_embedding AS d
              FROM sponsorship.sponsor_profiles p
             WHERE p.objectives_embedding IS NOT NULL
             ORDER BY p.objectives_embedding <=> p_objectives_embedding
             LIMIT LEAST(1000, p_limit * 4)) h
      JOIN sponsorship.sponsors s ON s.id = h.sponsor_id
     WHERE 1 - h.d >= p_threshold
     ORDER BY h.d, h.sponsor_id
     LIMIT p_limit;
    PERFORM sponsorship.search_settings_restore(v_old);
END
$fn$;
COMMENT ON FUNCTION sponsorship.find_similar_sponsors(vector, integer, float8) IS
    'The sponsors whose objectives embedding is nearest to a 384-dimension vector, with cosine similarity at least '
    'p_threshold; nearest first.';

CREATE FUNCTION sponsorship.find_similar_events(p_description_embedding vector, p_limit integer DEFAULT 10,
                                                p_threshold float8 DEFAULT 0.7)
RETURNS TABLE (event_id uuid, similarity_score numeric, event_title text, category text)
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
    v_old text[];
BEGIN
    PERFORM sponsorship.check_embedding_arg(p_description_embedding, p_limit, p_threshold);
    v_old := sponsorship.search_settings(true, p_limit);
    RETURN QUERY
    SELECT h.id, round((1 - h.d)::numeric, 5), h.title, h.category
      FROM (SELECT e.id, e.title, e.category, e.description_embedding <=> p_description_embedding AS d
              FROM sponsorship.events e
             WHERE e.description_embedding IS NOT NULL
             ORDER BY e.description_embedding <=> p_description_embedding
             LIMIT LEAST(1000, p_limit * 4)) h
     WHERE 1 - h.d >= p_threshold
     ORDER BY h.d, h.id
     LIMIT p_limit;
    PERFORM sponsorship.search_settings_restore(v_old);
END
$fn$;
COMMENT ON FUNCTION sponsorship.find_similar_events(vector, integer, float8) IS
    'The events whose description embedding is nearest to a 384-dimension vector, with cosine similarity at least '
    'p_threshold; nearest first.';

-- The old recommendation views, with the old columns first: stored matches (rejected ones
-- left out) with the three semantic signals of semantic_sponsor_event_match.
CREATE VIEW sponsorship.v_semantic_event_recommendations WITH (security_invoker = true) AS
SELECT m.sponsor_id, s.name AS sponsor_name, COALESCE(sp.industry, s.industry) AS industry, sp.annual_budget_cents,
       m.event_id, e.title AS event_title, e.category, e.start_at, m.score AS match_score,
       x.semantic_similarity, x.objectives_alignment, x.description_alignment,
       q.final_quality_score, q.quality_tier,
       e.city, m.status,
       row_number() OVER (PARTITION BY m.sponsor_id ORDER BY m.score DESC, m.event_id) AS rank
  FROM sponsorship.sponsorship_matches m
  JOIN sponsorship.events e ON e.id = m.event_id
  JOIN sponsorship.sponsors s ON s.id = m.sponsor_id
  LEFT JOIN sponsorship.sponsor_profiles sp ON sp.sponsor_id = m.sponsor_id
  LEFT JOIN sponsorship.event_quality_scores q ON q.event_id = m.event_id
 CROSS JOIN LATERAL sponsorship.semantic_sponsor_event_match(m.sponsor_id, m.event_id) x
 WHERE m.status <> 'rejected';
COMMENT ON VIEW sponsorship.v_semantic_event_recommendations IS
    'For each sponsor, its scored events ranked by match score, with meaning (embedding cosine), wording and track-record '
    'signals and the event''s quality. Filter by sponsor_id: the signals are computed per row.';

CREATE VIEW sponsorship.v_semantic_sponsor_recommendations WITH (security_invoker = true) AS
SELECT m.sponsor_id, s.name AS sponsor_name, COALESCE(sp.industry, s.industry) AS industry, sp.annual_budget_cents,
       m.event_id, e.title AS event_title, e.category, e.start_at, m.score AS match_score,
       x.semantic_similarity, x.objectives_alignment, x.description_alignment,
       q.final_quality_score, q.quality_tier,
       m.status,
       row_number() OVER (PARTITION BY m.event_id ORDER BY m.score DESC, m.sponsor_id) AS rank
  FROM sponsorship.sponsorship_matches m
  JOIN sponsorship.events e ON e.id = m.event_id
  JOIN sponsorship.sponsors s ON s.id = m.sponsor_id
  LEFT JOIN sponsorship.sponsor_profiles sp ON sp.sponsor_id = m.sponsor_id
  LEFT JOIN sponsorship.event_quality_scores q ON q.event_id = m.event_id
 CROSS JOIN LATERAL sponsorship.semantic_sponsor_event_match(m.sponsor_id, m.event_id) x
 WHERE m.status <> 'rejected';
COMMENT ON VIEW sponsorship.v_semantic_sponsor_recommendations IS
    'For each event, its scored sponsors ranked by match score, with meaning, wording and track-record signals and the '
    'event''s quality. Filter by event_id: the signals are computed per row.';

GRANT SELECT ON sponsorship.v_semantic_event_recommendations, sponsorship.v_semantic_sponsor_recommendations
   TO authenticated, service_role;
