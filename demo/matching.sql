-- Matching: a full rescore, the best matches with their explanations, and the worker
-- picking up an edit.
\set ON_ERROR_STOP on
\pset footer off
\pset null '—'

\echo
\echo '━━ Queue after loading (every new event and sponsor profile was queued by the triggers) ━━'
SELECT total_pending, high_priority_pending, failing, dead FROM sponsorship.check_recalc_queue_health();

\echo
\echo '━━ Full rescore: every sponsor against every event, top 25 each way, written to sponsorship_matches ━━'
\timing on
SELECT sponsorship.rescore_all_matches(25) AS matches_written;
\timing off
SELECT count(*) AS stored_matches, count(DISTINCT event_id) AS events, count(DISTINCT sponsor_id) AS sponsors,
       round(avg(score), 3) AS avg_score, max(score) AS best_score
  FROM sponsorship.sponsorship_matches;

\echo
\echo '━━ Best sponsors for three upcoming events (get_sponsor_recommendations) ━━'
SELECT left(e.title, 34) AS event, e.city, e.category, left(r.sponsor_name, 26) AS sponsor, r.industry,
       r.match_score, r.budget_fit, r.audience_alignment
  FROM (SELECT id, title, city, category FROM sponsorship.events
         WHERE start_at > now() + interval '30 days' AND visibility = 'public'
         ORDER BY id LIMIT 3) e
 CROSS JOIN LATERAL sponsorship.get_sponsor_recommendations(e.id, 3) r;

\echo
\echo '━━ Why the best pair scores what it does (fn_compute_match_score breakdown) ━━'
SELECT m.event_id AS best_event, m.sponsor_id AS best_sponsor
  FROM sponsorship.sponsorship_matches m JOIN sponsorship.events e ON e.id = m.event_id
 WHERE e.start_at > now() ORDER BY m.score DESC, m.event_id LIMIT 1 \gset
SELECT left(e.title, 40) AS event, e.city, e.category, s.name AS sponsor, p.industry,
       array_to_string(p.regions, ', ') AS sponsor_regions, x.score
  FROM sponsorship.events e, sponsorship.sponsors s, sponsorship.sponsor_profiles p,
       sponsorship.fn_compute_match_score(:'best_event', :'best_sponsor') x
 WHERE e.id = :'best_event' AND s.id = :'best_sponsor' AND p.sponsor_id = s.id;
SELECT f.key AS factor, (f.value ->> 'value')::numeric AS value, (f.value ->> 'weight')::numeric AS weight,
       (f.value ->> 'contribution')::numeric AS contribution, left((f.value -> 'inputs')::text, 110) AS driven_by
  FROM sponsorship.fn_compute_match_score(:'best_event', :'best_sponsor') x,
       jsonb_each(x.breakdown -> 'factors') f
 ORDER BY (f.value ->> 'contribution')::numeric DESC;
SELECT x.breakdown -> 'temporal' AS timing, x.breakdown -> 'missing' AS missing
  FROM sponsorship.fn_compute_match_score(:'best_event', :'best_sponsor') x;

\echo
\echo '━━ Best events for one sponsor (get_event_recommendations) ━━'
SELECT left(s.name, 24) AS sponsor, left(r.event_title, 36) AS event, r.category, r.start_at::date AS starts,
       r.match_score, round(r.quality_score, 3) AS quality, r.engagement_metrics ->> 'quality_tier' AS tier
  FROM (SELECT id, name FROM sponsorship.sponsors ORDER BY id LIMIT 1) s
 CROSS JOIN LATERAL sponsorship.get_event_recommendations(s.id, 5) r;

\echo
\echo '━━ Per-pair scoring in one backend: 2,000 random pairs, twice ━━'
\echo '   (calls go to the tables until they have cost one build of the compiled marketplace,'
\echo '    which the backend then keeps while no match input changes)'
CREATE TEMP TABLE demo_pairs AS
SELECT e.id AS event_id, s.id AS sponsor_id
  FROM (SELECT id, row_number() OVER (ORDER BY md5(id::text)) AS n FROM sponsorship.events) e
  JOIN (SELECT id, row_number() OVER (ORDER BY md5(id::text)) AS n FROM sponsorship.sponsors) s
    ON s.n = 1 + (e.n * 7919) % (SELECT count(*) FROM sponsorship.sponsors)
 WHERE e.n <= 2000;
CREATE TEMP TABLE demo_passes (pass int, calls_per_second numeric);
DO $$
DECLARE t0 timestamptz; x record;
BEGIN
    FOR p IN 1..2 LOOP
        t0 := clock_timestamp();
        FOR x IN SELECT * FROM demo_pairs LOOP
            PERFORM * FROM sponsorship.fn_compute_match_score(x.event_id, x.sponsor_id);
        END LOOP;
        INSERT INTO demo_passes VALUES (p, round(2000 / extract(epoch FROM clock_timestamp() - t0)));
    END LOOP;
END $$;
SELECT d.pass, d.calls_per_second, c.events AS events_kept, c.sponsors AS sponsors_kept,
       pg_size_pretty(c.approx_bytes) AS memory, c.hits, c.misses AS calls_to_tables,
       round(c.last_whole_build_ms::numeric) AS build_ms
  FROM demo_passes d CROSS JOIN sponsorship.match_cache_status() c ORDER BY d.pass;

\echo
\echo '━━ The background worker picks up an edit ━━'
ALTER SYSTEM SET sponsorship.worker_enabled = on;
SELECT pg_reload_conf() AS _ \gset
SELECT running, pid, detail FROM sponsorship.worker_status();
SELECT id AS edit_sponsor FROM sponsorship.sponsors ORDER BY id LIMIT 1 \gset
SELECT array_to_string(regions, ', ') AS regions_before FROM sponsorship.sponsor_profiles WHERE sponsor_id = :'edit_sponsor';
UPDATE sponsorship.sponsor_profiles SET regions = ARRAY['global'] WHERE sponsor_id = :'edit_sponsor';
SELECT clock_timestamp() AS edited_at \gset
\echo '   edited the profile: regions = global; waiting for the worker …'
DO $$
BEGIN
    FOR i IN 1..300 LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM sponsorship.fit_recalc_queue WHERE processed_at IS NULL);
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT round(extract(epoch FROM max(processed_at) - :'edited_at'::timestamptz)::numeric, 2) AS seconds_to_drain,
       count(*) FILTER (WHERE processed_at IS NULL) AS still_pending
  FROM sponsorship.fit_recalc_queue WHERE enqueued_at >= :'edited_at'::timestamptz - interval '1 second';
SELECT count(*) AS rescored_matches, round(avg((overlap_metrics ->> 'geo_fit')::numeric), 3) AS avg_geo_fit_now
  FROM sponsorship.sponsorship_matches WHERE sponsor_id = :'edit_sponsor' AND computed_at >= :'edited_at'::timestamptz;
