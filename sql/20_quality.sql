-- Event quality scores (SPEC §3). The formula lives in Rust (src/quality.rs) and is called
-- per event through event_quality_components(); this view gathers its inputs.

CREATE MATERIALIZED VIEW sponsorship.mv_event_quality_scores AS
WITH category_counts AS (
    SELECT lower(category) AS category, count(*) AS events
      FROM sponsorship.events
     WHERE category IS NOT NULL
     GROUP BY lower(category)
), largest AS (
    SELECT max(events) AS events FROM category_counts
)
SELECT e.id                             AS event_id,
       e.org_id,
       e.category,
       (i.event_id IS NOT NULL)         AS has_insights,
       q.engagement_rate,
       q.conversion,
       q.recency,
       q.content,
       q.category_popularity,
       q.volume,
       q.social_proof,
       q.sentiment,
       q.final_quality_score,
       q.quality_tier,
       now()                            AS computed_at
  FROM sponsorship.events e
  LEFT JOIN sponsorship.event_audience_insights i ON i.event_id = e.id
  LEFT JOIN category_counts c ON c.category = lower(e.category)
 CROSS JOIN largest
 CROSS JOIN LATERAL sponsorship.event_quality_components(
        i.engagement_score::float8,
        i.ticket_conversion_rate::float8,
        extract(epoch FROM (now() - e.start_at))::float8 / 86400.0,
        length(COALESCE(e.description, ''))::bigint,
        e.category IS NOT NULL,
        e.city IS NOT NULL,
        c.events::float8 / NULLIF(largest.events, 0)::float8,
        i.attendee_count::bigint,
        i.social_mentions::bigint,
        i.sentiment_score::float8) q;

CREATE UNIQUE INDEX mv_event_quality_scores_event_idx ON sponsorship.mv_event_quality_scores (event_id);
CREATE INDEX mv_event_quality_scores_tier_idx ON sponsorship.mv_event_quality_scores (quality_tier);
COMMENT ON MATERIALIZED VIEW sponsorship.mv_event_quality_scores IS
    'Per event: eight quality components in [0,1] (engagement rate, conversion, recency, content, category popularity, '
    'volume, social proof, sentiment), final_quality_score in [0,1] and quality_tier (premium >= 0.8, high >= 0.6, '
    'medium >= 0.4, else low). Refresh with refresh_event_quality_scores().';

-- Refreshes a materialized view of this extension and records the run in mv_refresh_log.
-- A failure is raised to the caller (naming the view), never swallowed, and logged by a
-- process of its own (log_refresh_failure()), so the row stays when the caller rolls back.
-- SECURITY DEFINER: only the owner may refresh a materialized view; EXECUTE is granted to
-- service_role alone (see 40_security.sql).
CREATE FUNCTION sponsorship.refresh_materialized_view(p_view text, p_concurrently boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    v_rel         regclass;
    v_started     timestamptz := clock_timestamp();
    v_concurrent  boolean;
    v_rows        bigint;
    v_state       text;
    v_message     text;
BEGIN
    IF p_view IS NULL OR p_concurrently IS NULL THEN
        RAISE EXCEPTION 'p_view and p_concurrently must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.oid INTO v_rel
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'sponsorship'::regnamespace AND c.relname = p_view AND c.relkind = 'm';
    IF v_rel IS NULL THEN
        RAISE EXCEPTION 'materialized view sponsorship.% does not exist', p_view
              USING ERRCODE = 'undefined_table';
    END IF;
    -- CONCURRENTLY needs a populated view; the first refresh is a plain one.
    v_concurrent := p_concurrently AND (SELECT relispopulated FROM pg_catalog.pg_class WHERE oid = v_rel);
    BEGIN
        IF v_concurrent THEN
            EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %s', v_rel);
        ELSE
            EXECUTE format('REFRESH MATERIALIZED VIEW %s', v_rel);
        END IF;
        EXECUTE format('SELECT count(*) FROM %s', v_rel) INTO v_rows;
        -- cached marketplaces (match_input_changes) must see the new scores and references
        PERFORM sponsorship.note_match_input_change();
    EXCEPTION WHEN OTHERS OR query_canceled THEN  -- a statement_timeout too
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
        PERFORM sponsorship.log_refresh_failure(p_view, extract(epoch FROM v_started)::float8, v_concurrent,
                                                v_state, v_message);
        RAISE EXCEPTION 'refreshing sponsorship.% failed: %', p_view, v_message USING ERRCODE = v_state;
    END;
    INSERT INTO sponsorship.mv_refresh_log
           (view_name, started_at, finished_at, duration_ms, concurrent, status, row_count)
    VALUES (p_view, v_started, clock_timestamp(),
            extract(epoch FROM clock_timestamp() - v_started) * 1000, v_concurrent, 'ok', v_rows);
    RETURN v_rows;
END
$fn$;
COMMENT ON FUNCTION sponsorship.refresh_materialized_view(text, boolean) IS
    'Refreshes sponsorship.<view> (concurrently when it is populated) and logs the run in mv_refresh_log; '
    'a failure is raised to the caller. Returns the row count.';

-- Market reference data the matcher looks up per pair: which countries a city is in (for
-- "a target city in the event's country"), and the median price of active packages per
-- quality tier and currency (budget fit of an event that sells nothing in the sponsor's
-- currency). Aggregates only; refreshed with the quality scores.
CREATE MATERIALIZED VIEW sponsorship.mv_city_countries AS
SELECT DISTINCT lower(btrim(city)) AS city, lower(btrim(country)) AS country
  FROM sponsorship.events
 WHERE city IS NOT NULL AND country IS NOT NULL AND btrim(city) <> '' AND btrim(country) <> '';
CREATE UNIQUE INDEX mv_city_countries_key ON sponsorship.mv_city_countries (city, country);
COMMENT ON MATERIALIZED VIEW sponsorship.mv_city_countries IS
    'Lower-cased (city, country) pairs seen in events; refreshed with the quality scores.';

CREATE MATERIALIZED VIEW sponsorship.mv_tier_price_medians AS
SELECT q.quality_tier, p.currency,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY p.price_cents) AS median_price_cents,
       count(*) AS packages
  FROM sponsorship.sponsorship_packages p
  JOIN sponsorship.mv_event_quality_scores q ON q.event_id = p.event_id
 WHERE p.is_active
 GROUP BY q.quality_tier, p.currency;
CREATE UNIQUE INDEX mv_tier_price_medians_key ON sponsorship.mv_tier_price_medians (quality_tier, currency);
COMMENT ON MATERIALIZED VIEW sponsorship.mv_tier_price_medians IS
    'Median price of active packages per event quality tier and currency; refreshed with the quality scores.';

CREATE FUNCTION sponsorship.refresh_event_quality_scores() RETURNS bigint
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_rows bigint;
BEGIN
    v_rows := sponsorship.refresh_materialized_view('mv_event_quality_scores', true);
    PERFORM sponsorship.refresh_materialized_view('mv_city_countries', true);
    PERFORM sponsorship.refresh_materialized_view('mv_tier_price_medians', true);
    RETURN v_rows;
END
$fn$;
COMMENT ON FUNCTION sponsorship.refresh_event_quality_scores() IS
    'Refreshes mv_event_quality_scores (and the market reference views built on it) concurrently, '
    'logging each run in mv_refresh_log; returns the number of scored events.';

-- Top matches per event and per sponsor, from the scored pairs in sponsorship_matches.
CREATE MATERIALIZED VIEW sponsorship.mv_sponsor_event_fit_scores AS
SELECT m.event_id,
       m.sponsor_id,
       m.score,
       m.status,
       m.overlap_metrics,
       m.computed_at,
       m.rank_for_event,
       m.rank_for_sponsor
  FROM (SELECT sm.*,
               row_number() OVER (PARTITION BY sm.event_id ORDER BY sm.score DESC, sm.sponsor_id) AS rank_for_event,
               row_number() OVER (PARTITION BY sm.sponsor_id ORDER BY sm.score DESC, sm.event_id) AS rank_for_sponsor
          FROM sponsorship.sponsorship_matches sm
         WHERE sm.status <> 'rejected') m
 WHERE m.rank_for_event <= 25 OR m.rank_for_sponsor <= 25;
CREATE UNIQUE INDEX mv_sponsor_event_fit_scores_pair_idx
    ON sponsorship.mv_sponsor_event_fit_scores (event_id, sponsor_id);
CREATE INDEX mv_sponsor_event_fit_scores_sponsor_idx
    ON sponsorship.mv_sponsor_event_fit_scores (sponsor_id, rank_for_sponsor);
COMMENT ON MATERIALIZED VIEW sponsorship.mv_sponsor_event_fit_scores IS
    'The 25 best-scored sponsors of each event and the 25 best-scored events of each sponsor (rejected pairs excluded).';
