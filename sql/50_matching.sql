-- Batch scoring. The Rust functions return parallel arrays in one call (scores already
-- numeric with five decimals); these unnest them.
-- (A set-returning function with a pinned search_path pays for the setting on every row it
-- returns; one call with arrays pays once.)
CREATE FUNCTION sponsorship.fn_compute_event_matches(p_event_id uuid, p_explain boolean DEFAULT false)
RETURNS TABLE (sponsor_id uuid, score numeric, breakdown jsonb)
LANGUAGE sql STABLE PARALLEL SAFE
AS $fn$
    SELECT u.sponsor_id, u.score, u.breakdown
      FROM sponsorship.event_match_arrays(p_event_id, p_explain) a,
           unnest(a.sponsor_ids, a.scores, a.breakdowns) WITH ORDINALITY AS u(sponsor_id, score, breakdown, n)
     ORDER BY u.n
$fn$;
COMMENT ON FUNCTION sponsorship.fn_compute_event_matches(uuid, boolean) IS
    'One event against every sponsor in one call, best first; with p_explain each row carries the full breakdown.';

CREATE FUNCTION sponsorship.fn_compute_sponsor_matches(p_sponsor_id uuid, p_explain boolean DEFAULT false)
RETURNS TABLE (event_id uuid, score numeric, breakdown jsonb)
LANGUAGE sql STABLE PARALLEL SAFE
AS $fn$
    SELECT u.event_id, u.score, u.breakdown
      FROM sponsorship.sponsor_match_arrays(p_sponsor_id, p_explain) a,
           unnest(a.event_ids, a.scores, a.breakdowns) WITH ORDINALITY AS u(event_id, score, breakdown, n)
     ORDER BY u.n
$fn$;
COMMENT ON FUNCTION sponsorship.fn_compute_sponsor_matches(uuid, boolean) IS
    'One sponsor against every event in one call, best first; with p_explain each row carries the full breakdown.';

CREATE FUNCTION sponsorship.fn_compute_match_matrix(p_top_k integer DEFAULT 25)
RETURNS TABLE (event_id uuid, sponsor_id uuid, score numeric, rank_for_event integer, rank_for_sponsor integer)
LANGUAGE sql STABLE PARALLEL SAFE
AS $fn$
    SELECT u.event_id, u.sponsor_id, round(u.score::numeric, 5), u.rank_for_event, u.rank_for_sponsor
      FROM sponsorship.match_matrix_arrays(p_top_k) a,
           unnest(a.event_ids, a.sponsor_ids, a.scores, a.ranks_for_event, a.ranks_for_sponsor)
             WITH ORDINALITY AS u(event_id, sponsor_id, score, rank_for_event, rank_for_sponsor, n)
     ORDER BY u.n
$fn$;
COMMENT ON FUNCTION sponsorship.fn_compute_match_matrix(integer) IS
    'Every sponsor against every event in one call: the p_top_k best sponsors of each event and events of each '
    'sponsor, with both ranks (NULL where the pair is not in that list).';

-- The recalculation queue (SPEC §4): triggers that enqueue what a change affects, health and
-- cleanup with the old result columns, recommendations with the old columns, weights admin.

-- Adds (or merges into) a pending queue row. A NULL side means "against everything"; a pair
-- already covered by a pending row for its whole event or sponsor is not added again.
-- SECURITY DEFINER: the queue is service-only, and a user's write must never fail on it.
CREATE FUNCTION sponsorship.enqueue_recalc(p_event_id uuid, p_sponsor_id uuid, p_reason text, p_priority int DEFAULT 0)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
BEGIN
    IF p_event_id IS NULL AND p_sponsor_id IS NULL THEN
        RETURN;
    END IF;
    -- Skip ids that are gone (a cascading delete of the parent) or being deleted.
    IF p_event_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sponsorship.events WHERE id = p_event_id) THEN
        RETURN;
    END IF;
    IF p_sponsor_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sponsorship.sponsors WHERE id = p_sponsor_id) THEN
        RETURN;
    END IF;
    IF p_event_id IS NOT NULL AND p_sponsor_id IS NOT NULL AND EXISTS (
           SELECT 1 FROM sponsorship.fit_recalc_queue q
            WHERE q.processed_at IS NULL
              AND ((q.event_id = p_event_id AND q.sponsor_id IS NULL)
                OR (q.sponsor_id = p_sponsor_id AND q.event_id IS NULL))) THEN
        RETURN;
    END IF;
    INSERT INTO sponsorship.fit_recalc_queue AS q (event_id, sponsor_id, priority, reason)
    VALUES (p_event_id, p_sponsor_id, p_priority, p_reason)
    ON CONFLICT (event_id, sponsor_id) WHERE processed_at IS NULL
    DO UPDATE SET priority = GREATEST(q.priority, EXCLUDED.priority),
                  reason = CASE WHEN q.reason IS NULL OR q.reason = EXCLUDED.reason THEN EXCLUDED.reason
                                ELSE left(q.reason || '; ' || EXCLUDED.reason, 500) END,
                  -- a fresh change deserves a fresh set of attempts
                  attempts = 0, next_attempt_at = now(), last_error = NULL;
END
$fn$;
COMMENT ON FUNCTION sponsorship.enqueue_recalc(uuid, uuid, text, int) IS
    'Queues a match recalculation: a pair, or an event or sponsor (NULL other side) against everything; deduplicated.';

CREATE FUNCTION sponsorship.fn_queue_recalc_on_sponsor_profiles() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM sponsorship.enqueue_recalc(NULL, OLD.sponsor_id, 'sponsor profile deleted', 1);
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.sponsor_id IS DISTINCT FROM NEW.sponsor_id THEN
        PERFORM sponsorship.enqueue_recalc(NULL, OLD.sponsor_id, 'sponsor profile moved', 1);
    END IF;
    PERFORM sponsorship.enqueue_recalc(NULL, NEW.sponsor_id, 'sponsor profile ' || lower(TG_OP), 1);
    RETURN NEW;
END
$fn$;

CREATE FUNCTION sponsorship.fn_queue_recalc_on_event_insights() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM sponsorship.enqueue_recalc(OLD.event_id, NULL, 'audience insights ' || lower(TG_OP), 0);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND (TG_OP = 'INSERT' OR NEW.event_id IS DISTINCT FROM OLD.event_id) THEN
        PERFORM sponsorship.enqueue_recalc(NEW.event_id, NULL, 'audience insights ' || lower(TG_OP), 0);
    END IF;
    RETURN COALESCE(NEW, OLD);
END
$fn$;

CREATE FUNCTION sponsorship.fn_queue_recalc_on_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
BEGIN
    PERFORM sponsorship.enqueue_recalc(NEW.id, NULL, 'event ' || lower(TG_OP), 0);
    RETURN NEW;
END
$fn$;

CREATE FUNCTION sponsorship.fn_queue_recalc_on_packages() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM sponsorship.enqueue_recalc(OLD.event_id, NULL, 'packages changed', 0);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.event_id IS DISTINCT FROM OLD.event_id) THEN
        PERFORM sponsorship.enqueue_recalc(NEW.event_id, NULL, 'packages changed', 0);
    END IF;
    RETURN COALESCE(NEW, OLD);
END
$fn$;

CREATE TRIGGER sponsor_profiles_queue_recalc
    AFTER INSERT OR DELETE ON sponsorship.sponsor_profiles
    FOR EACH ROW EXECUTE FUNCTION sponsorship.fn_queue_recalc_on_sponsor_profiles();
CREATE TRIGGER sponsor_profiles_queue_recalc_on_change
    AFTER UPDATE ON sponsorship.sponsor_profiles
    FOR EACH ROW
    WHEN (OLD.sponsor_id IS DISTINCT FROM NEW.sponsor_id
       OR OLD.annual_budget_cents IS DISTINCT FROM NEW.annual_budget_cents
       OR OLD.currency IS DISTINCT FROM NEW.currency
       OR OLD.target_audience IS DISTINCT FROM NEW.target_audience
       OR OLD.brand_objectives IS DISTINCT FROM NEW.brand_objectives
       OR OLD.preferred_categories IS DISTINCT FROM NEW.preferred_categories
       OR OLD.regions IS DISTINCT FROM NEW.regions
       OR OLD.objectives_embedding IS DISTINCT FROM NEW.objectives_embedding)
    EXECUTE FUNCTION sponsorship.fn_queue_recalc_on_sponsor_profiles();

CREATE TRIGGER event_audience_insights_queue_recalc
    AFTER INSERT OR UPDATE OR DELETE ON sponsorship.event_audience_insights
    FOR EACH ROW EXECUTE FUNCTION sponsorship.fn_queue_recalc_on_event_insights();

CREATE TRIGGER events_queue_recalc_on_insert
    AFTER INSERT ON sponsorship.events
    FOR EACH ROW EXECUTE FUNCTION sponsorship.fn_queue_recalc_on_events();
CREATE TRIGGER events_queue_recalc_on_change
    AFTER UPDATE ON sponsorship.events
    FOR EACH ROW
    WHEN (OLD.title IS DISTINCT FROM NEW.title
       OR OLD.description IS DISTINCT FROM NEW.description
       OR OLD.category IS DISTINCT FROM NEW.category
       OR OLD.city IS DISTINCT FROM NEW.city
       OR OLD.country IS DISTINCT FROM NEW.country
       OR OLD.start_at IS DISTINCT FROM NEW.start_at
       OR OLD.end_at IS DISTINCT FROM NEW.end_at
       OR OLD.description_embedding IS DISTINCT FROM NEW.description_embedding)
    EXECUTE FUNCTION sponsorship.fn_queue_recalc_on_events();

CREATE TRIGGER sponsorship_packages_queue_recalc
    AFTER INSERT OR DELETE ON sponsorship.sponsorship_packages
    FOR EACH ROW EXECUTE FUNCTION sponsorship.fn_queue_recalc_on_packages();
CREATE TRIGGER sponsorship_packages_queue_recalc_on_change
    AFTER UPDATE ON sponsorship.sponsorship_packages
    FOR EACH ROW
    WHEN (OLD.event_id IS DISTINCT FROM NEW.event_id
       OR OLD.price_cents IS DISTINCT FROM NEW.price_cents
       OR OLD.currency IS DISTINCT FROM NEW.currency
       OR OLD.is_active IS DISTINCT FROM NEW.is_active
       OR OLD.inventory IS DISTINCT FROM NEW.inventory
       OR OLD.sold IS DISTINCT FROM NEW.sold)
    EXECUTE FUNCTION sponsorship.fn_queue_recalc_on_packages();

-- Health, with the old result columns first.
CREATE FUNCTION sponsorship.check_recalc_queue_health()
RETURNS TABLE (total_pending integer, high_priority_pending integer, oldest_pending_age interval,
               avg_processing_time interval, failing integer, dead integer)
LANGUAGE sql STABLE
AS $fn$
    SELECT (count(*) FILTER (WHERE processed_at IS NULL))::integer,
           (count(*) FILTER (WHERE processed_at IS NULL AND priority > 0))::integer,
           max(now() - enqueued_at) FILTER (WHERE processed_at IS NULL),
           avg(processed_at - enqueued_at) FILTER (WHERE processed_at > now() - interval '1 day'),
           (count(*) FILTER (WHERE processed_at IS NULL AND last_error IS NOT NULL
                               AND attempts < pg_catalog.current_setting('sponsorship.recalc_max_attempts')::int))::integer,
           (count(*) FILTER (WHERE processed_at IS NULL
                               AND attempts >= pg_catalog.current_setting('sponsorship.recalc_max_attempts')::int))::integer
      FROM sponsorship.fit_recalc_queue
$fn$;
COMMENT ON FUNCTION sponsorship.check_recalc_queue_health() IS
    'Queue depth, high-priority depth, age of the oldest pending row, mean processing time over the last day, '
    'rows failing and being retried, and dead rows (out of attempts, kept with their last_error).';

CREATE FUNCTION sponsorship.cleanup_recalc_queue() RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_done integer;
    v_dead integer;
BEGIN
    DELETE FROM sponsorship.fit_recalc_queue
     WHERE processed_at IS NOT NULL AND processed_at < now() - interval '7 days';
    GET DIAGNOSTICS v_done = ROW_COUNT;
    DELETE FROM sponsorship.fit_recalc_queue
     WHERE processed_at IS NULL
       AND attempts >= pg_catalog.current_setting('sponsorship.recalc_max_attempts')::int
       AND enqueued_at < now() - interval '30 days';
    GET DIAGNOSTICS v_dead = ROW_COUNT;
    PERFORM sponsorship.prune_match_input_changes();
    RETURN v_done + v_dead;
END
$fn$;
COMMENT ON FUNCTION sponsorship.cleanup_recalc_queue() IS
    'Deletes queue rows processed more than 7 days ago and dead rows older than 30 days (returns that count), '
    'and prunes match_input_changes.';

-- Recommendations, with the old result columns. Stored matches are used; an event or
-- sponsor that has none yet is scored live.
CREATE FUNCTION sponsorship.get_sponsor_recommendations(p_event_id uuid, p_limit integer DEFAULT 10)
RETURNS TABLE (sponsor_id uuid, sponsor_name text, industry text, match_score numeric, budget_fit numeric,
               audience_alignment numeric, quality_indicators jsonb)
LANGUAGE plpgsql STABLE
AS $fn$
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'p_limit must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM sponsorship.events e WHERE e.id = p_event_id) THEN
        RAISE EXCEPTION 'event % does not exist or is not visible to you', p_event_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY
    WITH stored AS (
        SELECT m.sponsor_id, m.score, m.overlap_metrics AS metrics, m.status, m.computed_at
          FROM sponsorship.sponsorship_matches m
         WHERE m.event_id = p_event_id AND m.status <> 'rejected'
         ORDER BY m.score DESC, m.sponsor_id
         LIMIT p_limit
    ), live AS (
        SELECT x.sponsor_id, x.score, b.breakdown AS metrics, 'live'::text AS status, now() AS computed_at
          FROM (SELECT r.sponsor_id, r.score
                  FROM sponsorship.fn_compute_event_matches(p_event_id) r
                 WHERE NOT EXISTS (SELECT 1 FROM sponsorship.sponsorship_matches m WHERE m.event_id = p_event_id)
                 LIMIT p_limit) x
         CROSS JOIN LATERAL sponsorship.fn_compute_match_score(p_event_id, x.sponsor_id) b
    ), picked AS (
        SELECT * FROM stored UNION ALL SELECT * FROM live
    )
    SELECT s.id, s.name, COALESCE(sp.industry, s.industry), p.score,
           (p.metrics ->> 'budget_fit')::numeric,
           (p.metrics ->> 'audience_overlap')::numeric,
           jsonb_build_object('annual_budget_cents', sp.annual_budget_cents,
                              'preferred_categories', sp.preferred_categories,
                              'regions', sp.regions,
                              'engagement_quality', (p.metrics ->> 'engagement_quality')::numeric,
                              'temporal_fit', (p.metrics ->> 'temporal_fit')::numeric,
                              'status', p.status,
                              'computed_at', p.computed_at)
      FROM picked p
      JOIN sponsorship.sponsors s ON s.id = p.sponsor_id
      LEFT JOIN sponsorship.sponsor_profiles sp ON sp.sponsor_id = s.id
     ORDER BY p.score DESC, s.id;
END
$fn$;
COMMENT ON FUNCTION sponsorship.get_sponsor_recommendations(uuid, integer) IS
    'The best sponsors for an event (stored matches, or scored live when the event has none), rejected ones excluded.';

CREATE FUNCTION sponsorship.get_event_recommendations(p_sponsor_id uuid, p_limit integer DEFAULT 10)
RETURNS TABLE (event_id uuid, event_title text, category text, start_at timestamptz, match_score numeric,
               quality_score numeric, engagement_metrics jsonb)
LANGUAGE plpgsql STABLE
AS $fn$
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'p_limit must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM sponsorship.sponsors s WHERE s.id = p_sponsor_id) THEN
        RAISE EXCEPTION 'sponsor % does not exist or is not visible to you', p_sponsor_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY
    WITH stored AS (
        SELECT m.event_id, m.score FROM sponsorship.sponsorship_matches m
         WHERE m.sponsor_id = p_sponsor_id AND m.status <> 'rejected'
    ), picked AS (
        SELECT st.event_id, st.score FROM stored st
        UNION ALL
        SELECT r.event_id, r.score FROM sponsorship.fn_compute_sponsor_matches(p_sponsor_id) r
         WHERE NOT EXISTS (SELECT 1 FROM stored)
    )
    SELECT e.id, e.title, e.category, e.start_at, p.score,
           round(q.final_quality_score::numeric, 5),
           jsonb_build_object('attendee_count', i.attendee_count,
                              'engagement_score', i.engagement_score,
                              'conversion_rate', i.ticket_conversion_rate,
                              'engagement_rate', round(q.engagement_rate::numeric, 5),
                              'social_mentions', i.social_mentions,
                              'quality_tier', q.quality_tier)
      FROM picked p
      JOIN sponsorship.events e ON e.id = p.event_id
      LEFT JOIN sponsorship.event_audience_insights i ON i.event_id = e.id
      LEFT JOIN sponsorship.event_quality_scores q ON q.event_id = e.id
     ORDER BY p.score DESC, q.final_quality_score DESC NULLS LAST, e.id
     LIMIT p_limit;
END
$fn$;
COMMENT ON FUNCTION sponsorship.get_event_recommendations(uuid, integer) IS
    'The best events for a sponsor (stored matches, or scored live when the sponsor has none), rejected ones excluded.';

CREATE FUNCTION sponsorship.refresh_sponsor_event_fit_scores() RETURNS bigint
LANGUAGE sql
AS $fn$ SELECT sponsorship.refresh_materialized_view('mv_sponsor_event_fit_scores', true) $fn$;
COMMENT ON FUNCTION sponsorship.refresh_sponsor_event_fit_scores() IS
    'Refreshes mv_sponsor_event_fit_scores (top matches per event and per sponsor) and logs the run.';

-- Activates a new version of the scoring weights after checking them.
CREATE FUNCTION sponsorship.set_scoring_weights(p_budget_fit numeric, p_audience_overlap numeric, p_geo_fit numeric,
                                                p_engagement_quality numeric, p_objectives_similarity numeric,
                                                p_note text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_version integer;
    v_sum numeric := p_budget_fit + p_audience_overlap + p_geo_fit + p_engagement_quality + p_objectives_similarity;
BEGIN
    IF v_sum IS NULL THEN
        RAISE EXCEPTION 'every scoring weight is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF LEAST(p_budget_fit, p_audience_overlap, p_geo_fit, p_engagement_quality, p_objectives_similarity) < 0 THEN
        RAISE EXCEPTION 'scoring weights must be non-negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_sum <> 1 THEN
        RAISE EXCEPTION 'scoring weights must sum to 1, these sum to %', v_sum USING ERRCODE = 'invalid_parameter_value';
    END IF;
    LOCK TABLE sponsorship.scoring_weights IN SHARE ROW EXCLUSIVE MODE;
    SELECT COALESCE(max(version), 0) + 1 INTO v_version FROM sponsorship.scoring_weights;
    UPDATE sponsorship.scoring_weights SET is_active = false WHERE is_active;
    INSERT INTO sponsorship.scoring_weights (version, budget_fit, audience_overlap, geo_fit, engagement_quality,
                                             objectives_similarity, is_active, note)
    VALUES (v_version, p_budget_fit, p_audience_overlap, p_geo_fit, p_engagement_quality, p_objectives_similarity,
            true, p_note);
    RETURN v_version;
END
$fn$;
COMMENT ON FUNCTION sponsorship.set_scoring_weights(numeric, numeric, numeric, numeric, numeric, text) IS
    'Activates a new version of the match weights (non-negative, summing to 1); returns the version. '
    'Stored matches keep the weights_version they were computed with until rescored.';

-- The match-input change log. Backends keep the compiled marketplace between calls
-- (src/api/match_cache.rs); this log is how they know it went stale. Every transaction that
-- changes something a score is computed from leaves one row, keyed by its transaction id, in
-- the same transaction as the change: a reader's snapshot sees the row exactly when it sees
-- the change, so "the rows with xid >= the cache's snapshot xmin that I can see" is the same
-- list as when the cache was read if, and only if, nothing the cache holds has changed.
CREATE TABLE sponsorship.match_input_changes (
    xid        xid8 PRIMARY KEY,
    changed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE sponsorship.match_input_changes IS
    'One row per transaction that changed a match input (sponsors, profiles, events, insights, packages, weights, '
    'org membership, the quality views); backends compare it with their cached marketplace. Pruned by '
    'prune_match_input_changes(). Service-only.';
CREATE TABLE sponsorship.match_input_pruned (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    upto      xid8 NOT NULL
);
COMMENT ON TABLE sponsorship.match_input_pruned IS
    'Rows of match_input_changes with xid below upto have been pruned: a cache read before that rebuilds.';
INSERT INTO sponsorship.match_input_pruned (upto) VALUES ('0'::xid8);
ALTER TABLE sponsorship.match_input_changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE sponsorship.match_input_pruned ENABLE ROW LEVEL SECURITY;
CREATE POLICY service_role_all ON sponsorship.match_input_changes TO service_role USING (true) WITH CHECK (true);
CREATE POLICY service_role_all ON sponsorship.match_input_pruned TO service_role USING (true) WITH CHECK (true);
REVOKE ALL ON sponsorship.match_input_changes, sponsorship.match_input_pruned FROM anon, authenticated;
GRANT ALL ON sponsorship.match_input_changes, sponsorship.match_input_pruned TO service_role;

-- SECURITY DEFINER: the log is service-only, and any writer of a match input must leave its row.
CREATE FUNCTION sponsorship.note_match_input_change() RETURNS void
LANGUAGE sql SECURITY DEFINER
AS $fn$
    INSERT INTO sponsorship.match_input_changes (xid) VALUES (pg_catalog.pg_current_xact_id())
    ON CONFLICT (xid) DO NOTHING
$fn$;
COMMENT ON FUNCTION sponsorship.note_match_input_change() IS
    'Records that the current transaction changed a match input (once per transaction).';

CREATE FUNCTION sponsorship.fn_note_match_input_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
BEGIN
    PERFORM sponsorship.note_match_input_change();
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION sponsorship.fn_note_match_input_change() IS
    'Statement trigger: the statement changed a match input.';

DO $log$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sponsors', 'sponsor_profiles', 'events', 'event_audience_insights',
                             'sponsorship_packages', 'scoring_weights', 'org_members']
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sponsorship.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION sponsorship.fn_note_match_input_change()',
                       t || '_note_match_input_change', t);
    END LOOP;
END
$log$;

-- A direct REFRESH of a quality or market view, or DDL on the extension's tables, changes
-- what scores are computed from without a row trigger firing; an event trigger notes it.
-- (Creating an event trigger needs a superuser; refresh_materialized_view() notes its own
-- refreshes either way.)
CREATE FUNCTION sponsorship.fn_note_match_input_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_ddl_commands() c WHERE c.schema_name = 'sponsorship') THEN
        PERFORM sponsorship.note_match_input_change();
    END IF;
END
$fn$;
COMMENT ON FUNCTION sponsorship.fn_note_match_input_ddl() IS
    'Event trigger: DDL or REFRESH MATERIALIZED VIEW on the sponsorship schema changed match inputs.';

DO $evt$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        CREATE EVENT TRIGGER sponsorship_note_match_input_ddl ON ddl_command_end
            EXECUTE FUNCTION sponsorship.fn_note_match_input_ddl();
    ELSE
        RAISE NOTICE 'sponsorship: not a superuser, so no event trigger watches direct REFRESH MATERIALIZED VIEW; '
                     'refresh the quality views with sponsorship.refresh_event_quality_scores() so cached '
                     'marketplaces see the change';
    END IF;
END
$evt$;

-- Prunes the change log. A row can go once every snapshot that could still miss it is gone
-- (its xid is below every running transaction's xmin) and it is older than p_keep; caches read
-- before the new horizon rebuild on their next use.
CREATE FUNCTION sponsorship.prune_match_input_changes(p_keep interval DEFAULT interval '10 minutes')
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_horizon xid8;
    v_upto    xid8;
    v_deleted integer;
BEGIN
    IF p_keep IS NULL OR p_keep < interval '0' THEN
        RAISE EXCEPTION 'p_keep must be a non-negative interval' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_horizon := pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot());
    SELECT max(c.xid) INTO v_upto FROM sponsorship.match_input_changes c
     WHERE c.xid < v_horizon AND c.changed_at < now() - p_keep;
    IF v_upto IS NULL THEN
        RETURN 0;
    END IF;
    UPDATE sponsorship.match_input_pruned SET upto = GREATEST(upto, v_upto);
    DELETE FROM sponsorship.match_input_changes c WHERE c.xid <= v_upto;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END
$fn$;
COMMENT ON FUNCTION sponsorship.prune_match_input_changes(interval) IS
    'Deletes match_input_changes rows older than p_keep that no running snapshot can miss; returns the count. '
    'cleanup_recalc_queue() calls it.';
