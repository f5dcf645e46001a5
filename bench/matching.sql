-- The matching benchmark (issue 3). Every figure is a ratio against a baseline measured in
-- this same session, or against the target where the target is absolute.
\set ON_ERROR_STOP on
\pset footer off
SET client_min_messages = warning;
CREATE TEMP TABLE results (measure text, value numeric, unit text, baseline numeric, ratio numeric, target text);

-- random pairs, the same for both implementations
CREATE TEMP TABLE pairs AS
SELECT e.id AS event_id, s.id AS sponsor_id
  FROM (SELECT id, row_number() OVER (ORDER BY md5(id::text)) AS n FROM sponsorship.events) e
  JOIN (SELECT id, row_number() OVER (ORDER BY md5(id::text)) AS n FROM sponsorship.sponsors) s
    ON s.n = 1 + (e.n * 7919) % (SELECT count(*) FROM sponsorship.sponsors)
 WHERE e.n <= :pairs;

-- the baseline computes the same scores
SELECT max(abs(r.score - (bench.plpgsql_match_score(p.event_id, p.sponsor_id)).score)) AS max_abs_difference_vs_plpgsql,
       count(*) AS pairs_compared
  FROM (SELECT * FROM pairs LIMIT 500) p, LATERAL sponsorship.fn_compute_match_score(p.event_id, p.sponsor_id) r;

DO $$
DECLARE
    t0 timestamptz; rust_s float8; plpgsql_s float8; n int; x record; e uuid; ns int;
    batch_s float8; loop_s float8;
BEGIN
    SELECT count(*) INTO n FROM pairs;
    -- warm both up (plans, caches)
    PERFORM sponsorship.fn_compute_match_score(event_id, sponsor_id) FROM (SELECT * FROM pairs LIMIT 50) p;
    PERFORM bench.plpgsql_match_score(event_id, sponsor_id) FROM (SELECT * FROM pairs LIMIT 50) p;

    t0 := clock_timestamp();
    FOR x IN SELECT * FROM pairs LOOP
        PERFORM * FROM sponsorship.fn_compute_match_score(x.event_id, x.sponsor_id);
    END LOOP;
    rust_s := extract(epoch FROM clock_timestamp() - t0);
    t0 := clock_timestamp();
    FOR x IN SELECT * FROM pairs LOOP
        PERFORM bench.plpgsql_match_score(x.event_id, x.sponsor_id);
    END LOOP;
    plpgsql_s := extract(epoch FROM clock_timestamp() - t0);
    INSERT INTO results VALUES ('per-pair fn_compute_match_score', round((n / rust_s)::numeric, 0), 'calls/s',
                                round((n / plpgsql_s)::numeric, 0), round((plpgsql_s / rust_s)::numeric, 2), '>= 3x PL/pgSQL');

    -- one event against all sponsors: one call vs looping the PL/pgSQL function
    SELECT count(*) INTO ns FROM sponsorship.sponsors;
    -- the first call in a backend compiles every sponsor; later calls reuse them
    t0 := clock_timestamp();
    PERFORM count(*) FROM sponsorship.fn_compute_event_matches((SELECT id FROM sponsorship.events ORDER BY id LIMIT 1));
    INSERT INTO results VALUES ('batch: first call in a backend (compiles all sponsors)',
                                round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 1), 'ms', NULL, NULL, 'informational');
    batch_s := 0; loop_s := 0;
    FOR e IN SELECT id FROM sponsorship.events ORDER BY md5(id::text) LIMIT 3 LOOP
        t0 := clock_timestamp();
        PERFORM count(*) FROM sponsorship.fn_compute_event_matches(e);
        batch_s := batch_s + extract(epoch FROM clock_timestamp() - t0);
        t0 := clock_timestamp();
        PERFORM bench.plpgsql_match_score(e, s.id) FROM sponsorship.sponsors s;
        loop_s := loop_s + extract(epoch FROM clock_timestamp() - t0);
    END LOOP;
    INSERT INTO results VALUES ('batch: one event vs all sponsors', round((3 * ns / batch_s)::numeric, 0), 'pairs/s',
                                round((3 * ns / loop_s)::numeric, 0), round((loop_s / batch_s)::numeric, 1), '>= 100x per pair');
END $$;

-- the matrix kernel on the whole marketplace (loading excluded from the rate)
INSERT INTO results
SELECT 'matrix kernel (' || sponsors || ' x ' || events || ', top 25 each way)', round(pairs_per_second::numeric, 0),
       'pairs/s/core', 10000000, round((pairs_per_second / 10000000)::numeric, 2), '>= 10M pairs/s per core'
  FROM sponsorship.match_kernel_benchmark(25);

-- the full rescore, writing the top 25 each way
TRUNCATE sponsorship.sponsorship_matches;
SELECT clock_timestamp() AS t0 \gset
SELECT sponsorship.rescore_all_matches(25) AS written \gset
INSERT INTO results
SELECT 'full rescore incl. writing ' || :written || ' matches', round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 1),
       's', 60, round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric / 60, 2), '< 60 s (ratio < 1)';

-- the worker draining 100,000 queued pairs
ALTER SYSTEM SET sponsorship.worker_enabled = off;
ALTER SYSTEM SET sponsorship.worker_batch_size = 5000;
SELECT pg_reload_conf() AS _ \gset
SELECT pg_sleep(1.5) AS _ \gset
TRUNCATE sponsorship.fit_recalc_queue;
INSERT INTO sponsorship.fit_recalc_queue (event_id, sponsor_id, reason)
SELECT DISTINCT ON (e.id, s.id) e.id, s.id, 'benchmark'
  FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM sponsorship.events) e
  JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM sponsorship.sponsors) s
    ON s.n IN (1 + (e.n * 31) % (SELECT count(*) FROM sponsorship.sponsors), 1 + (e.n * 37 + 5) % (SELECT count(*) FROM sponsorship.sponsors),
               1 + (e.n * 41 + 11) % (SELECT count(*) FROM sponsorship.sponsors), 1 + (e.n * 43 + 17) % (SELECT count(*) FROM sponsorship.sponsors),
               1 + (e.n * 47 + 23) % (SELECT count(*) FROM sponsorship.sponsors))
 LIMIT 100000;
SELECT count(*) AS queued FROM sponsorship.fit_recalc_queue \gset
ALTER SYSTEM SET sponsorship.worker_enabled = on;
SELECT clock_timestamp() AS t0, pg_reload_conf() AS _ \gset
DO $$
BEGIN
    FOR i IN 1..1200 LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM sponsorship.fit_recalc_queue WHERE processed_at IS NULL);
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT extract(epoch FROM max(processed_at) - :'t0'::timestamptz) AS drain_s,
       count(*) FILTER (WHERE processed_at IS NULL) AS left_over
  FROM sponsorship.fit_recalc_queue \gset
INSERT INTO results VALUES ('worker drains ' || :queued || ' queued pairs', round(:queued / :drain_s, 0), 'pairs/s',
                            20000, round(:queued / :drain_s / 20000, 2), '>= 20,000 pairs/s (left over: ' || :left_over || ')');
ALTER SYSTEM RESET sponsorship.worker_batch_size;
SELECT pg_reload_conf() AS _ \gset

\echo
\echo '━━ Matching benchmark ━━'
SELECT measure, value, unit, baseline, (ratio || 'x') AS ratio, target FROM results;
