-- Operations (SPEC §7): what keeps the marketplace healthy for years without a person
-- watching it — partitions kept ahead and retired, materialized views refreshed and logged,
-- queue health recorded, old logs pruned, every job scheduled in pg_cron, one health report.
-- Every job is bounded per run (a row limit or one refresh), and pg_cron never starts a job
-- while its previous run is still going, so a slow run never piles work up behind it.

---------------------------------------------------------------------------------------
-- Partitions
---------------------------------------------------------------------------------------

CREATE FUNCTION sponsorship.create_next_month_partitions(p_months_ahead integer DEFAULT NULL)
RETURNS TABLE (parent text, partition_name text, created boolean, rows_moved bigint)
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_ahead  integer := COALESCE(p_months_ahead,
                                 pg_catalog.current_setting('sponsorship.partitions_ahead_months', true)::integer, 3);
    t        regclass;
    m        integer;
    r        record;
BEGIN
    IF v_ahead NOT BETWEEN 0 AND 120 THEN
        RAISE EXCEPTION 'p_months_ahead must be between 0 and 120 (it is %)', v_ahead
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH t IN ARRAY ARRAY['sponsorship.event_impressions', 'sponsorship.ticket_analytics']::regclass[] LOOP
        FOR m IN 0 .. v_ahead LOOP
            r := sponsorship.create_month_partition(t, (date_trunc('month', now() AT TIME ZONE 'UTC')
                                                        + make_interval(months => m))::date);
            parent := 'sponsorship.' || (SELECT relname FROM pg_catalog.pg_class WHERE oid = t);
            partition_name := r.partition_name;
            created := r.created;
            rows_moved := r.rows_moved;
            RETURN NEXT;
        END LOOP;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION sponsorship.create_next_month_partitions(integer) IS
    'Makes sure event_impressions and ticket_analytics have a partition for this (UTC) month and the next p_months_ahead '
    '(default sponsorship.partitions_ahead_months); idempotent; rows of a new month already in the DEFAULT partition '
    'move into it. One row per month and table.';

-- The month a partition named <table>_yYYYYmMM holds.
CREATE FUNCTION sponsorship.partition_month(p_name text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
    SELECT make_date(m[1]::int, m[2]::int, 1) FROM regexp_match(p_name, '_y([0-9]{4})m([0-9]{2})$') m
$fn$;
COMMENT ON FUNCTION sponsorship.partition_month(text) IS 'The first day of the month a monthly partition (by its name) holds.';

-- SECURITY DEFINER: detaching or dropping a partition, and releasing one from the extension,
-- take the owner; EXECUTE is for the service role (90_finalize.sql).
CREATE FUNCTION sponsorship.apply_partition_retention(p_keep_months integer DEFAULT NULL, p_action text DEFAULT NULL)
RETURNS TABLE (parent text, partition_name text, month date, action text)
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    v_keep    integer := COALESCE(p_keep_months,
                                  pg_catalog.current_setting('sponsorship.partition_retention_months', true)::integer, 0);
    v_action  text := COALESCE(p_action, pg_catalog.current_setting('sponsorship.partition_retention_action', true), 'detach');
    v_cutoff  date;
    r         record;
BEGIN
    IF v_keep < 0 THEN
        RAISE EXCEPTION 'p_keep_months must not be negative (0 keeps everything)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_action NOT IN ('detach', 'drop') THEN
        RAISE EXCEPTION 'retention action must be detach or drop, not %', v_action USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_keep = 0 THEN
        RETURN;
    END IF;
    -- the current month and the v_keep - 1 before it are kept
    v_cutoff := (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => v_keep - 1))::date;
    FOR r IN
        SELECT i.inhparent::regclass AS parent, c.relname, sponsorship.partition_month(c.relname) AS month
          FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent IN ('sponsorship.event_impressions'::regclass, 'sponsorship.ticket_analytics'::regclass)
           AND sponsorship.partition_month(c.relname) < v_cutoff
         ORDER BY 1, 3
    LOOP
        -- the months made at CREATE EXTENSION belong to the extension: release them first
        -- (this takes the extension's owner, as the scheduled job is)
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass
                      AND d.objid = format('sponsorship.%I', r.relname)::regclass
                      AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e') THEN
            EXECUTE format('ALTER EXTENSION sponsorship DROP TABLE sponsorship.%I', r.relname);
        END IF;
        IF v_action = 'drop' THEN
            EXECUTE format('DROP TABLE sponsorship.%I', r.relname);
        ELSE
            EXECUTE format('ALTER TABLE %s DETACH PARTITION sponsorship.%I', r.parent, r.relname);
            EXECUTE format('COMMENT ON TABLE sponsorship.%I IS %L', r.relname,
                           format('Detached from %s by apply_partition_retention() on %s: the month %s, kept as a table',
                                  r.parent, current_date, to_char(r.month, 'YYYY-MM')));
        END IF;
        parent := 'sponsorship.' || (SELECT relname FROM pg_catalog.pg_class WHERE oid = r.parent);
        partition_name := r.relname;
        month := r.month;
        action := v_action;
        RETURN NEXT;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION sponsorship.apply_partition_retention(integer, text) IS
    'Detaches (or drops) the monthly partitions of event_impressions and ticket_analytics older than the last '
    'p_keep_months months (default sponsorship.partition_retention_months; 0 keeps all) — the current month counts as '
    'one. Returns what it did.';

---------------------------------------------------------------------------------------
-- Materialized views and their refreshes
---------------------------------------------------------------------------------------

-- What a package card shows beyond the package itself: how much attention its event gets.
-- Aggregates only (no row of the private fact tables), refreshed every 15 minutes.
CREATE MATERIALIZED VIEW sponsorship.mv_package_card_stats AS
SELECT p.id AS package_id,
       p.event_id,
       COALESCE(v.views_30d, 0)          AS event_views_30d,
       COALESCE(v.sponsor_views_30d, 0)  AS sponsor_placement_views_30d,
       COALESCE(t.tickets_30d, 0)        AS event_tickets_30d,
       COALESCE(m.strong_matches, 0)     AS strong_sponsor_matches,
       now()                             AS computed_at
  FROM sponsorship.sponsorship_packages p
  LEFT JOIN (SELECT x.event_id,
                    count(*) FILTER (WHERE x.kind = 'view') AS views_30d,
                    count(*) FILTER (WHERE x.kind = 'view' AND x.sponsor_id IS NOT NULL) AS sponsor_views_30d
               FROM sponsorship.event_impressions x
              WHERE x.created_at >= now() - interval '30 days'
              GROUP BY x.event_id) v ON v.event_id = p.event_id
  LEFT JOIN (SELECT y.event_id, sum(y.tickets)::bigint AS tickets_30d
               FROM sponsorship.ticket_analytics y
              WHERE y.created_at >= now() - interval '30 days'
              GROUP BY y.event_id) t ON t.event_id = p.event_id
  LEFT JOIN (SELECT sm.event_id, count(*) AS strong_matches
               FROM sponsorship.sponsorship_matches sm
              WHERE sm.score >= 0.6 AND sm.status <> 'rejected'
              GROUP BY sm.event_id) m ON m.event_id = p.event_id
 WHERE p.is_active;
CREATE UNIQUE INDEX mv_package_card_stats_key ON sponsorship.mv_package_card_stats (package_id);
COMMENT ON MATERIALIZED VIEW sponsorship.mv_package_card_stats IS
    'Per active package: views of its event and of sponsor placements there, tickets sold in the last 30 days, and '
    'sponsors whose stored match with the event scores at least 0.6. Refreshed by refresh_package_cards().';
REVOKE ALL ON sponsorship.mv_package_card_stats FROM PUBLIC, anon, authenticated;
GRANT SELECT ON sponsorship.mv_package_card_stats TO service_role;

-- It runs with its owner's rights, like event_quality_scores, because the materialized view
-- is not granted to API roles.
-- The figures come from the organizer's private facts (impressions, ticket sales, matches), so
-- they are shown to the organizer's members and the service role only: a sponsor or visitor
-- sees the card without them. security_barrier: a caller's own conditions cannot run before
-- this rule (an error in one would otherwise tell something about a hidden row).
CREATE VIEW sponsorship.package_card_stats WITH (security_barrier) AS
SELECT s.*
  FROM sponsorship.mv_package_card_stats s
  JOIN sponsorship.sponsorship_packages p ON p.id = s.package_id
  JOIN sponsorship.events e ON e.id = p.event_id
 WHERE sponsorship.has_org_role(e.org_id, 'viewer')
    OR pg_catalog.pg_has_role('service_role', 'USAGE');
COMMENT ON VIEW sponsorship.package_card_stats IS
    'mv_package_card_stats for the packages of the caller''s organizations (and everything for the service role).';
REVOKE ALL ON sponsorship.package_card_stats FROM PUBLIC;
GRANT SELECT ON sponsorship.package_card_stats TO anon, authenticated, service_role;

-- The package cards with those figures (30_views.sql defined the first columns; these are
-- appended, so callers of the old view keep theirs).
CREATE OR REPLACE VIEW sponsorship.v_sponsorship_package_cards WITH (security_invoker = true) AS
SELECT p.id                      AS package_id,
       p.event_id,
       e.title                   AS event_title,
       e.category                AS event_category,
       e.city                    AS event_city,
       e.country                 AS event_country,
       e.start_at                AS event_start_at,
       p.tier,
       p.title,
       p.description,
       p.package_type,
       p.benefits,
       p.price_cents,
       p.currency,
       p.inventory,
       p.sold,
       p.inventory - p.sold      AS remaining,
       p.sold >= p.inventory     AS sold_out,
       p.expected_reach,
       CASE WHEN p.expected_reach > 0
            THEN round(p.price_cents * 1000.0 / p.expected_reach)::bigint END AS cost_per_thousand_reach_cents,
       q.final_quality_score     AS event_quality_score,
       q.quality_tier            AS event_quality_tier,
       s.event_views_30d,
       s.sponsor_placement_views_30d,
       s.event_tickets_30d,
       s.strong_sponsor_matches,
       s.computed_at             AS stats_computed_at
  FROM sponsorship.sponsorship_packages p
  JOIN sponsorship.events e ON e.id = p.event_id
  LEFT JOIN sponsorship.event_quality_scores q ON q.event_id = p.event_id
  LEFT JOIN sponsorship.package_card_stats s ON s.package_id = p.id
 WHERE p.is_active;

CREATE FUNCTION sponsorship.refresh_package_cards() RETURNS bigint
LANGUAGE sql
AS $fn$ SELECT sponsorship.refresh_materialized_view('mv_package_card_stats', true) $fn$;
COMMENT ON FUNCTION sponsorship.refresh_package_cards() IS
    'Refreshes mv_package_card_stats (the figures of v_sponsorship_package_cards) concurrently and logs the run; '
    'returns its rows. Service-only.';

-- The old name, kept: the semantic marketplace is the stored top matches per event and per
-- sponsor (what the recommendation views and functions read first).
CREATE FUNCTION sponsorship.refresh_semantic_marketplace() RETURNS void
LANGUAGE plpgsql
AS $fn$
BEGIN
    PERFORM sponsorship.refresh_materialized_view('mv_sponsor_event_fit_scores', true);
END
$fn$;
COMMENT ON FUNCTION sponsorship.refresh_semantic_marketplace() IS
    'Refreshes mv_sponsor_event_fit_scores (the top matches per event and per sponsor) concurrently and logs the run. '
    'Service-only.';

---------------------------------------------------------------------------------------
-- Queue health, kept
---------------------------------------------------------------------------------------

CREATE TABLE sponsorship.queue_health_log (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    checked_at       timestamptz NOT NULL DEFAULT now(),
    queue            text NOT NULL CHECK (queue IN ('fit_recalc_queue', 'payout_queue')),
    pending          bigint NOT NULL CHECK (pending >= 0),
    oldest_pending   interval,
    failing          bigint NOT NULL CHECK (failing >= 0),
    dead             bigint NOT NULL CHECK (dead >= 0),
    unknown_outcome  bigint NOT NULL DEFAULT 0 CHECK (unknown_outcome >= 0),
    status           text NOT NULL CHECK (status IN ('ok', 'warning')),
    problems         text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX queue_health_log_checked_idx ON sponsorship.queue_health_log (queue, checked_at DESC);
COMMENT ON TABLE sponsorship.queue_health_log IS
    'Every queue health check (record_queue_health(), every 30 minutes when scheduled): depth, age of the oldest '
    'pending item, failing (being retried), dead, payouts of unknown outcome, and the thresholds crossed. Service-only.';
ALTER TABLE sponsorship.queue_health_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY service_role_all ON sponsorship.queue_health_log TO service_role USING (true) WITH CHECK (true);
REVOKE ALL ON sponsorship.queue_health_log FROM PUBLIC, anon, authenticated;
GRANT ALL ON sponsorship.queue_health_log TO service_role;

CREATE FUNCTION sponsorship.record_queue_health(p_max_pending bigint DEFAULT 10000,
                                                p_max_age interval DEFAULT interval '1 hour',
                                                p_max_dead bigint DEFAULT 0)
RETURNS SETOF sponsorship.queue_health_log
LANGUAGE plpgsql
AS $fn$
DECLARE
    r  sponsorship.queue_health_log;
    q  record;
BEGIN
    IF p_max_pending IS NULL OR p_max_pending < 0 OR p_max_age IS NULL OR p_max_age < interval '0'
       OR p_max_dead IS NULL OR p_max_dead < 0 THEN
        RAISE EXCEPTION 'thresholds must be given and not negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR q IN
        SELECT 'fit_recalc_queue' AS queue, h.total_pending::bigint - h.dead AS pending,
               (SELECT max(now() - f.enqueued_at) FROM sponsorship.fit_recalc_queue f
                 WHERE f.processed_at IS NULL
                   AND f.attempts < pg_catalog.current_setting('sponsorship.recalc_max_attempts')::int) AS oldest,
               h.failing::bigint AS failing, h.dead::bigint AS dead, 0::bigint AS unknown
          FROM sponsorship.check_recalc_queue_health() h
        UNION ALL
        SELECT 'payout_queue',
               count(*) FILTER (WHERE pq.status IN ('pending', 'processing', 'failed')),
               max(now() - pq.enqueued_at) FILTER (WHERE pq.status IN ('pending', 'processing', 'failed')),
               count(*) FILTER (WHERE pq.status = 'failed'),
               count(*) FILTER (WHERE pq.status = 'dead'),
               count(*) FILTER (WHERE pq.maybe_sent AND pq.status <> 'completed')
          FROM sponsorship.payout_queue pq
    LOOP
        r := NULL;
        r.problems := '{}';
        IF q.pending > p_max_pending THEN
            r.problems := r.problems || format('%s items pending (threshold %s)', q.pending, p_max_pending);
        END IF;
        IF q.oldest > p_max_age THEN
            r.problems := r.problems || format('oldest pending item waiting %s (threshold %s)',
                                               date_trunc('second', q.oldest), p_max_age);
        END IF;
        IF q.dead > p_max_dead THEN
            r.problems := r.problems || format('%s dead items (threshold %s)', q.dead, p_max_dead);
        END IF;
        IF q.unknown > 0 THEN
            r.problems := r.problems || format('%s payouts of unknown outcome (see v_unknown_payouts)', q.unknown);
        END IF;
        INSERT INTO sponsorship.queue_health_log (queue, pending, oldest_pending, failing, dead, unknown_outcome, status, problems)
        VALUES (q.queue, q.pending, q.oldest, q.failing, q.dead, q.unknown,
                CASE WHEN cardinality(r.problems) > 0 THEN 'warning' ELSE 'ok' END, r.problems)
        RETURNING * INTO r;
        IF r.status = 'warning' THEN
            RAISE WARNING 'sponsorship queue health: %: %', r.queue, array_to_string(r.problems, '; ');
        END IF;
        RETURN NEXT r;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION sponsorship.record_queue_health(bigint, interval, bigint) IS
    'Checks both queues, keeps the result in queue_health_log, raises a WARNING naming every threshold crossed '
    '(pending items, age of the oldest, dead items, payouts of unknown outcome) and returns the rows. Service-only.';

---------------------------------------------------------------------------------------
-- Cleanup
---------------------------------------------------------------------------------------

-- Old log rows go; the ledger (sponsorship_payouts, payout_queue) and audit_log stay.
CREATE FUNCTION sponsorship.run_cleanup(p_limit integer DEFAULT 50000) RETURNS jsonb
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_out  jsonb := '{}'::jsonb;
    n      bigint;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'p_limit must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_out := v_out || jsonb_build_object('fit_recalc_queue', sponsorship.cleanup_recalc_queue());
    DELETE FROM sponsorship.mv_refresh_log WHERE id IN (
        SELECT id FROM sponsorship.mv_refresh_log WHERE started_at < now() - interval '90 days' ORDER BY id LIMIT p_limit);
    GET DIAGNOSTICS n = ROW_COUNT;
    v_out := v_out || jsonb_build_object('mv_refresh_log', n);
    DELETE FROM sponsorship.queue_health_log WHERE id IN (
        SELECT id FROM sponsorship.queue_health_log WHERE checked_at < now() - interval '30 days' ORDER BY id LIMIT p_limit);
    GET DIAGNOSTICS n = ROW_COUNT;
    v_out := v_out || jsonb_build_object('queue_health_log', n);
    DELETE FROM sponsorship.payout_runs WHERE id IN (
        SELECT id FROM sponsorship.payout_runs WHERE started_at < now() - interval '30 days' ORDER BY id LIMIT p_limit);
    GET DIAGNOSTICS n = ROW_COUNT;
    v_out := v_out || jsonb_build_object('payout_runs', n);
    RETURN v_out;
END
$fn$;
COMMENT ON FUNCTION sponsorship.run_cleanup(integer) IS
    'Daily cleanup: processed recalculation-queue rows (cleanup_recalc_queue()), refresh log rows older than 90 days, '
    'queue health rows and payout pass reports older than 30 days, at most p_limit of each per run. Returns the '
    'counts. Service-only.';

CREATE FUNCTION sponsorship.prune_cron_history(p_keep interval DEFAULT interval '7 days', p_limit integer DEFAULT 50000)
RETURNS bigint
LANGUAGE plpgsql
AS $fn$
DECLARE
    n bigint := 0;
BEGIN
    IF p_keep IS NULL OR p_keep < interval '0' OR p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'p_keep must not be negative and p_limit at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_regclass('cron.job_run_details') IS NULL THEN
        RETURN 0;
    END IF;
    EXECUTE 'DELETE FROM cron.job_run_details WHERE runid IN (
               SELECT runid FROM cron.job_run_details WHERE end_time < now() - $1 ORDER BY runid LIMIT $2)'
      USING p_keep, p_limit;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$fn$;
COMMENT ON FUNCTION sponsorship.prune_cron_history(interval, integer) IS
    'Deletes pg_cron''s cron.job_run_details rows that ended more than p_keep ago (at most p_limit per run); 0 when '
    'pg_cron is not installed here. Service-only.';

---------------------------------------------------------------------------------------
-- The schedule
---------------------------------------------------------------------------------------

CREATE FUNCTION sponsorship.scheduled_jobs()
RETURNS TABLE (job_name text, schedule text, command text, purpose text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
    VALUES
      ('sponsorship:partitions', '30 2 1 * *', 'SELECT count(*) FROM sponsorship.create_next_month_partitions()',
       'monthly: partitions for this month and the months ahead'),
      ('sponsorship:retention', '40 2 1 * *', 'SELECT count(*) FROM sponsorship.apply_partition_retention()',
       'monthly: months past sponsorship.partition_retention_months detached or dropped'),
      ('sponsorship:quality', '15 3 * * *', 'SELECT sponsorship.refresh_event_quality_scores()',
       'daily: event quality scores and the market reference views'),
      ('sponsorship:due-payouts', '*/5 * * * *', 'SELECT sponsorship.queue_due_payouts(1000)',
       'every 5 minutes: queue the automatic payouts that are due'),
      ('sponsorship:payouts', '*/5 * * * *', 'SELECT sponsorship.process_payout_queue(200)',
       'every 5 minutes: up to 200 sends (a job of its own: pg_cron runs a job as one transaction)'),
      ('sponsorship:queue-health', '*/30 * * * *', 'SELECT count(*) FROM sponsorship.record_queue_health()',
       'every 30 minutes: queue health, kept in queue_health_log, WARNING over thresholds'),
      ('sponsorship:cleanup', '45 3 * * *', 'SELECT sponsorship.run_cleanup()',
       'daily: processed queue rows and old log rows'),
      ('sponsorship:marketplace', '5 * * * *', 'SELECT sponsorship.refresh_semantic_marketplace()',
       'hourly: the stored top matches per event and sponsor'),
      ('sponsorship:package-cards', '*/15 * * * *', 'SELECT sponsorship.refresh_package_cards()',
       'every 15 minutes: the figures of the package cards'),
      ('sponsorship:roi', '20 * * * *', 'SELECT sponsorship.evaluate_completed_sponsorships(200)',
       'hourly: ROI of up to 200 completed activations'),
      ('sponsorship:settings-audit', '*/10 * * * *', 'SELECT sponsorship.observe_platform_settings()',
       'every 10 minutes: the platform fee setting into audit_log when it changed'),
      ('sponsorship:cron-history', '50 3 * * *', 'SELECT sponsorship.prune_cron_history()',
       'daily: cron.job_run_details older than 7 days')
$fn$;
COMMENT ON FUNCTION sponsorship.scheduled_jobs() IS
    'The jobs schedule_jobs() registers in pg_cron: name, cron schedule, command and what it does.';

CREATE FUNCTION sponsorship.require_pg_cron() RETURNS void
LANGUAGE plpgsql
AS $fn$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in database %', current_database()
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name to this database and run '
                           'CREATE EXTENSION pg_cron; or run the commands of sponsorship.scheduled_jobs() from your own '
                           'scheduler.';
    END IF;
END
$fn$;
COMMENT ON FUNCTION sponsorship.require_pg_cron() IS 'Raises a clear error (55000) when pg_cron is not installed here.';

-- pg_cron keys a job by (name, role): the jobs are scheduled by the extension's owner (or a
-- superuser) only, so there is one set and it runs with the rights its functions need.
CREATE FUNCTION sponsorship.require_job_owner() RETURNS void
LANGUAGE plpgsql
AS $fn$
BEGIN
    IF NOT (pg_catalog.pg_has_role((SELECT x.extowner FROM pg_catalog.pg_extension x WHERE x.extname = 'sponsorship'), 'USAGE')
            OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)) THEN
        RAISE EXCEPTION 'the sponsorship jobs are scheduled by the extension''s owner, not %', current_user
              USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$fn$;
COMMENT ON FUNCTION sponsorship.require_job_owner() IS
    'Raises 42501 unless the current role is (a member of) the extension''s owner or a superuser.';

-- What pg_cron knows of the extension's jobs, for health(). SECURITY DEFINER: cron.job and
-- cron.job_run_details are readable by their jobs' owners only; this reveals the sponsorship
-- jobs and nothing else.
CREATE FUNCTION sponsorship.cron_job_status()
RETURNS TABLE (job_name text, jobid bigint, schedule text, last_status text, last_start timestamptz, last_message text)
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
BEGIN
    IF to_regclass('cron.job') IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE $q$
        SELECT j.jobname::text, j.jobid, j.schedule::text, d.status::text, d.start_time, d.return_message::text
          FROM cron.job j
          LEFT JOIN LATERAL (SELECT * FROM cron.job_run_details x WHERE x.jobid = j.jobid
                              ORDER BY x.start_time DESC NULLS LAST LIMIT 1) d ON true
         WHERE j.jobname IN (SELECT s.job_name FROM sponsorship.scheduled_jobs() s) $q$;
END
$fn$;
COMMENT ON FUNCTION sponsorship.cron_job_status() IS
    'Each scheduled sponsorship job in pg_cron with its last run (status, start, message). Service-only.';

CREATE FUNCTION sponsorship.schedule_jobs()
RETURNS TABLE (job_name text, schedule text, jobid bigint)
LANGUAGE plpgsql
AS $fn$
DECLARE
    j record;
BEGIN
    PERFORM sponsorship.require_pg_cron();
    PERFORM sponsorship.require_job_owner();
    FOR j IN SELECT * FROM sponsorship.scheduled_jobs() LOOP
        -- cron.schedule(name, ...) replaces a job of the same name: calling this again is harmless
        EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO jobid USING j.job_name, j.schedule, j.command;
        job_name := j.job_name;
        schedule := j.schedule;
        RETURN NEXT;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION sponsorship.schedule_jobs() IS
    'Registers (or updates) every job of scheduled_jobs() in pg_cron, to run as the calling role (the extension''s '
    'owner or a superuser; 42501 otherwise); idempotent. Error 55000 when pg_cron is not installed here.';

CREATE FUNCTION sponsorship.unschedule_jobs() RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    n integer;
BEGIN
    PERFORM sponsorship.require_pg_cron();
    PERFORM sponsorship.require_job_owner();
    EXECUTE 'SELECT count(cron.unschedule(jobid))::integer FROM cron.job
              WHERE jobname IN (SELECT job_name FROM sponsorship.scheduled_jobs())' INTO n;
    RETURN n;
END
$fn$;
COMMENT ON FUNCTION sponsorship.unschedule_jobs() IS
    'Removes every job schedule_jobs() registered; returns how many. Error 55000 when pg_cron is not installed here.';

---------------------------------------------------------------------------------------
-- One health report
---------------------------------------------------------------------------------------

CREATE FUNCTION sponsorship.health()
RETURNS TABLE (area text, item text, status text, value text, detail text)
LANGUAGE plpgsql
AS $fn$
DECLARE
    r        record;
    v_ahead  integer := COALESCE(pg_catalog.current_setting('sponsorship.partitions_ahead_months', true)::integer, 3);
    v_oldest interval;
BEGIN
    -- queues
    SELECT max(now() - f.enqueued_at) INTO v_oldest FROM sponsorship.fit_recalc_queue f
     WHERE f.processed_at IS NULL
       AND f.attempts < pg_catalog.current_setting('sponsorship.recalc_max_attempts')::int;
    FOR r IN SELECT * FROM sponsorship.check_recalc_queue_health() LOOP
        RETURN QUERY VALUES
          ('recalc queue', 'pending', CASE WHEN r.total_pending > 10000 THEN 'warning' ELSE 'ok' END,
           r.total_pending::text, format('%s high priority', r.high_priority_pending)),
          ('recalc queue', 'oldest pending', CASE WHEN v_oldest > interval '1 hour' THEN 'warning' ELSE 'ok' END,
           COALESCE(date_trunc('second', v_oldest)::text, '—'), 'age of the oldest row waiting (dead rows aside)'),
          ('recalc queue', 'failing / dead', CASE WHEN r.dead > 0 THEN 'warning' ELSE 'ok' END,
           format('%s / %s', r.failing, r.dead), 'failing: being retried; dead: out of attempts');
    END LOOP;
    RETURN QUERY
    SELECT 'payout queue', 'pending',
           CASE WHEN max(now() - pq.enqueued_at) FILTER (WHERE pq.status IN ('pending','processing','failed')) > interval '1 hour'
                THEN 'warning' ELSE 'ok' END,
           (count(*) FILTER (WHERE pq.status IN ('pending','processing','failed')))::text,
           format('oldest %s', COALESCE(date_trunc('second', max(now() - pq.enqueued_at)
                                        FILTER (WHERE pq.status IN ('pending','processing','failed')))::text, '—'))
      FROM sponsorship.payout_queue pq
    UNION ALL
    SELECT 'payout queue', 'failed / dead', CASE WHEN count(*) FILTER (WHERE pq.status = 'dead') > 0 THEN 'warning' ELSE 'ok' END,
           format('%s / %s', count(*) FILTER (WHERE pq.status = 'failed'), count(*) FILTER (WHERE pq.status = 'dead')),
           'failed: waiting for a retry; dead: out of attempts, see last_error'
      FROM sponsorship.payout_queue pq
    UNION ALL
    SELECT 'payout queue', 'unknown outcome',
           CASE WHEN count(*) > 0 THEN 'warning' ELSE 'ok' END, count(*)::text,
           'payouts that may have reached Stripe: resent with the same idempotency key (v_unknown_payouts)'
      FROM sponsorship.payout_queue pq WHERE pq.maybe_sent AND pq.status <> 'completed';
    -- materialized views: last refresh and its outcome
    RETURN QUERY
    SELECT 'refresh', m.matviewname::text,
           CASE WHEN l.status IS NULL THEN 'warning'
                WHEN l.status = 'error' THEN 'critical'
                WHEN l.started_at < now() - interval '2 days' THEN 'warning' ELSE 'ok' END,
           COALESCE(l.status || ' ' || to_char(l.started_at, 'YYYY-MM-DD HH24:MI'), 'never'),
           CASE WHEN l.status = 'error' THEN l.error
                WHEN l.status IS NOT NULL THEN format('%s rows in %s ms', l.row_count, round(l.duration_ms))
                ELSE 'not refreshed since install' END
      FROM pg_catalog.pg_matviews m
      LEFT JOIN LATERAL (SELECT * FROM sponsorship.mv_refresh_log x WHERE x.view_name = m.matviewname
                          ORDER BY x.started_at DESC, x.id DESC LIMIT 1) l ON true
     WHERE m.schemaname = 'sponsorship'
     ORDER BY 2;
    -- partitions: months covered ahead, rows left in DEFAULT
    RETURN QUERY
    SELECT 'partitions', 'sponsorship.' || t.parent::text,
           CASE WHEN COALESCE(max(sponsorship.partition_month(c.relname)), '-infinity') <
                     (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => v_ahead))::date
                THEN 'warning' ELSE 'ok' END,
           COALESCE(to_char(max(sponsorship.partition_month(c.relname)), 'YYYY-MM'), 'none'),
           format('%s monthly partitions, the last one above; want %s months ahead', count(c.relname), v_ahead)
      FROM unnest(ARRAY['event_impressions', 'ticket_analytics']) t(parent)
      LEFT JOIN pg_catalog.pg_inherits i ON i.inhparent = ('sponsorship.' || t.parent)::regclass
      LEFT JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid AND sponsorship.partition_month(c.relname) IS NOT NULL
     GROUP BY t.parent;
    RETURN QUERY
    SELECT 'partitions', 'rows in DEFAULT',
           CASE WHEN (SELECT count(*) FROM sponsorship.event_impressions_default) +
                     (SELECT count(*) FROM sponsorship.ticket_analytics_default) > 0 THEN 'warning' ELSE 'ok' END,
           ((SELECT count(*) FROM sponsorship.event_impressions_default) +
            (SELECT count(*) FROM sponsorship.ticket_analytics_default))::text,
           'facts outside every monthly partition (create_month_partition() moves them when it creates their month)';
    -- scheduled jobs
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RETURN QUERY VALUES ('jobs', 'pg_cron', 'warning', 'not installed',
                             'nothing runs on a schedule here: see sponsorship.scheduled_jobs()');
    ELSE
        RETURN QUERY
        SELECT 'jobs', s.job_name,
               CASE WHEN j.jobid IS NULL THEN 'warning'
                    WHEN j.last_status = 'failed' THEN 'critical'
                    ELSE 'ok' END,
               CASE WHEN j.jobid IS NULL THEN 'not scheduled'
                    WHEN j.last_status IS NULL THEN 'scheduled ' || j.schedule || ', not run yet'
                    ELSE j.last_status || ' ' || to_char(j.last_start, 'YYYY-MM-DD HH24:MI') END,
               CASE WHEN j.last_status = 'failed' THEN j.last_message ELSE s.purpose END
          FROM sponsorship.scheduled_jobs() s
          LEFT JOIN sponsorship.cron_job_status() j ON j.job_name = s.job_name
         ORDER BY 2;
    END IF;
    -- embeddings
    RETURN QUERY
    SELECT 'embeddings', c.embedding,
           CASE WHEN c.stale > 0 OR c.current < c.total - c.without_text THEN 'warning' ELSE 'ok' END,
           format('%s of %s', c.current, c.total),
           format('%s waiting for an embedding (backfill_embeddings())', c.stale)
      FROM sponsorship.embedding_coverage() c;
END
$fn$;
COMMENT ON FUNCTION sponsorship.health() IS
    'One report for a person or a monitor: queue depths and ages, failing and dead items, payouts of unknown outcome, '
    'the last refresh of every materialized view, partitions ahead and rows in DEFAULT, the last run of every '
    'scheduled job, embedding coverage; each with a status (ok, warning, critical). Service-only.';
