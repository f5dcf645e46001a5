-- The recalculation workers draining 100,000 queued pairs (bench.sh runs this with 1 and
-- with 2 workers; :workers says how many are running).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
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
INSERT INTO bench.results VALUES (:'workers' || ' worker(s) drain ' || :queued || ' queued pairs', round(:queued / :drain_s, 0), 'pairs/s',
                            20000, round(:queued / :drain_s / 20000, 2), '>= 20,000 pairs/s (left over: ' || :left_over || ')');
ALTER SYSTEM RESET sponsorship.worker_batch_size;
SELECT pg_reload_conf() AS _ \gset

