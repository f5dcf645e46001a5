-- Operations: partitions kept ahead (with rows moved out of DEFAULT), the materialized views
-- refreshed and logged, every job scheduled in pg_cron, and the health report.
\set ON_ERROR_STOP on
\pset footer off
\pset null '—'
SET client_min_messages = warning;

\echo
\echo '━━ Partitions: a late batch of facts for seven months ahead landed in DEFAULT; create_next_month_partitions(7) ━━'
INSERT INTO sponsorship.event_impressions (event_id, kind, created_at)
SELECT e.id, 'view', date_trunc('month', now()) + interval '7 months' + g * interval '1 minute'
  FROM (SELECT id FROM sponsorship.events ORDER BY id LIMIT 1) e, generate_series(1, 500) g;
SELECT count(*) AS rows_in_default_before FROM sponsorship.event_impressions_default;
SELECT parent, partition_name, rows_moved
  FROM sponsorship.create_next_month_partitions(7)
 WHERE created
 ORDER BY 1, 2;
SELECT count(*) AS rows_in_default_after FROM sponsorship.event_impressions_default;

\echo
\echo '    a month of facts, read by time range, scans only its partitions:'
EXPLAIN (COSTS OFF)
SELECT count(*) FROM sponsorship.event_impressions
 WHERE created_at >= date_trunc('month', now()) - interval '1 month' AND created_at < date_trunc('month', now());

\echo
\echo '━━ Refreshes, each logged in mv_refresh_log ━━'
SELECT sponsorship.refresh_package_cards() AS package_cards;
SELECT sponsorship.refresh_semantic_marketplace();
SELECT view_name, status, concurrent, row_count, round(duration_ms) AS ms
  FROM sponsorship.mv_refresh_log
 WHERE id IN (SELECT max(id) FROM sponsorship.mv_refresh_log GROUP BY view_name)
 ORDER BY view_name;

\echo
\echo '━━ The schedule: schedule_jobs() registers every job in pg_cron (idempotent) ━━'
CREATE EXTENSION IF NOT EXISTS pg_cron;
SELECT count(*) AS jobs_registered FROM sponsorship.schedule_jobs();
SELECT j.jobid, j.jobname, j.schedule, p.purpose
  FROM cron.job j JOIN sponsorship.scheduled_jobs() p ON p.job_name = j.jobname
 ORDER BY j.jobname;
SELECT count(*) FILTER (WHERE status = 'warning') AS queue_checks_warning,
       string_agg(queue || ': ' || array_to_string(problems, '; '), ' | ') FILTER (WHERE status = 'warning') AS problems
  FROM sponsorship.record_queue_health();

\echo
\echo '━━ Health: sponsorship.health() ━━'
SELECT area, item, status, value, left(detail, 70) AS detail FROM sponsorship.health();
