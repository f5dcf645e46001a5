-- Post-event evaluation and the audit trail (SPEC §7b).
--
--  * evaluate_sponsorship_roi(): what an activation delivered (impressions, unique reach,
--    engagement, dwell, completion, attributed ticket views and sales) against what its
--    package promised, and what it cost per thousand impressions and per engaged attendee.
--    Facts are counted here, over the activation's window, on the partitioned fact tables;
--    the figures are Rust (roi_assess(), src/roi.rs).
--  * audit_log: every change of an organization's money settings, every match decision and
--    every observed change of the platform's default fee, with who, when, old and new values.
--    Append-only, for everyone.

---------------------------------------------------------------------------------------
-- The activation lifecycle
---------------------------------------------------------------------------------------

-- The ROI window of an activation is its live period: stamp it when the status changes and
-- the caller gave no time. (An INSERT keeps what it was given: loading history must not
-- stamp today.) For API users the lifecycle only moves forward (draft -> live -> completed
-- -> evaluated), an activation becomes evaluated only with a new ROI summary (which only
-- evaluate_sponsorship_roi() writes), and a completed activation's window is frozen: a party
-- cannot undo or re-time an evaluation. The service role may correct anything.
CREATE FUNCTION sponsorship.fn_activation_lifecycle() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_order CONSTANT text[] := ARRAY['draft', 'live', 'completed', 'evaluated'];
BEGIN
    IF NOT sponsorship.caller_is_service_role() THEN
        IF array_position(v_order, NEW.status) < array_position(v_order, OLD.status) THEN
            RAISE EXCEPTION 'an activation moves forward only (draft, live, completed, evaluated): it is %, not %',
                  OLD.status, NEW.status
                  USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        IF NEW.status = 'evaluated' AND NEW.roi_summary IS NOT DISTINCT FROM OLD.roi_summary THEN
            RAISE EXCEPTION 'an activation is evaluated by evaluate_sponsorship_roi()'
                  USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        IF OLD.status IN ('completed', 'evaluated')
           AND (NEW.started_at IS DISTINCT FROM OLD.started_at OR NEW.completed_at IS DISTINCT FROM OLD.completed_at) THEN
            RAISE EXCEPTION 'the window of a % activation cannot change', OLD.status
                  USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        IF NEW.status = 'live' AND NEW.started_at IS NULL THEN
            NEW.started_at := now();
        ELSIF NEW.status = 'completed' AND NEW.completed_at IS NULL THEN
            NEW.completed_at := GREATEST(now(), COALESCE(NEW.started_at, now()));
        END IF;
    END IF;
    RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION sponsorship.fn_activation_lifecycle() IS
    'Trigger: keeps the activation lifecycle forward-only for API users (evaluated only by evaluate_sponsorship_roi(), '
    'window frozen once completed); stamps started_at when it goes live and completed_at when it completes, unless given.';
CREATE TRIGGER event_sponsorships_lifecycle BEFORE UPDATE ON sponsorship.event_sponsorships
    FOR EACH ROW EXECUTE FUNCTION sponsorship.fn_activation_lifecycle();

---------------------------------------------------------------------------------------
-- ROI
---------------------------------------------------------------------------------------

-- SECURITY DEFINER: raw impressions are the organizer's and roi_summary is written by this
-- function only; either party's editors (and the service role) may ask for it.
CREATE FUNCTION sponsorship.evaluate_sponsorship_roi(p_event_sponsorship_id uuid) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    a          record;
    v_from     timestamptz;
    v_to       timestamptz;
    i          record;
    t          record;
    v_summary  jsonb;
BEGIN
    IF p_event_sponsorship_id IS NULL THEN
        RAISE EXCEPTION 'p_event_sponsorship_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- who may ask, decided before any lock is taken
    SELECT ev.org_id, es.sponsor_id INTO a
      FROM sponsorship.event_sponsorships es JOIN sponsorship.events ev ON ev.id = es.event_id
     WHERE es.id = p_event_sponsorship_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event sponsorship % does not exist', p_event_sponsorship_id USING ERRCODE = 'no_data_found';
    END IF;
    -- (current_user is this function's owner here: ask about the role the session acts as)
    IF NOT (sponsorship.caller_is_service_role()
            OR sponsorship.has_org_role(a.org_id, 'editor')
            OR sponsorship.has_sponsor_role(a.sponsor_id, 'editor')) THEN
        RAISE EXCEPTION 'only the service role or an editor of the sponsor or of the organizer may evaluate this sponsorship'
              USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT es.id, es.status, es.event_id, es.sponsor_id, es.started_at, es.completed_at,
           o.id AS order_id, o.amount_cents, o.currency, o.status AS order_status, o.stripe_charge_id,
           p.id AS package_id, p.title AS package_title, p.tier, p.package_type, p.expected_reach,
           ev.org_id, ev.title AS event_title, ev.start_at, ev.end_at,
           ins.attendee_count, ins.engagement_score
      INTO a
      FROM sponsorship.event_sponsorships es
      JOIN sponsorship.sponsorship_orders o ON o.id = es.order_id
      JOIN sponsorship.sponsorship_packages p ON p.id = o.package_id
      JOIN sponsorship.events ev ON ev.id = es.event_id
      LEFT JOIN sponsorship.event_audience_insights ins ON ins.event_id = es.event_id
     WHERE es.id = p_event_sponsorship_id
       FOR UPDATE OF es;
    IF NOT FOUND THEN  -- deleted meanwhile
        RAISE EXCEPTION 'event sponsorship % does not exist', p_event_sponsorship_id USING ERRCODE = 'no_data_found';
    END IF;
    IF a.status NOT IN ('completed', 'evaluated') THEN
        RAISE EXCEPTION 'event sponsorship % is %: an activation is evaluated once it has completed',
              p_event_sponsorship_id, a.status
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    HINT = 'Set its status to completed when the activation is over.';
    END IF;
    IF a.order_status NOT IN ('accepted', 'live', 'completed') OR a.stripe_charge_id IS NULL THEN
        RAISE EXCEPTION 'the order of event sponsorship % is % (%): only a paid purchase is evaluated',
              p_event_sponsorship_id, a.order_status, CASE WHEN a.stripe_charge_id IS NULL THEN 'no charge' ELSE 'charged' END
              USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;

    -- The window: the activation's live period, or else the event's dates with 30 days of
    -- promotion before and 7 days after.
    v_from := COALESCE(a.started_at, a.start_at - interval '30 days');
    v_to := GREATEST(v_from, COALESCE(a.completed_at, COALESCE(a.end_at, a.start_at) + interval '7 days'));

    -- The sponsor's placements at this event in the window. The bounds are parameters of
    -- the plan, so only the months of the window are scanned.
    SELECT count(*) FILTER (WHERE x.kind = 'view')                              AS views,
           count(*) FILTER (WHERE x.kind = 'click')                             AS clicks,
           count(*) FILTER (WHERE x.kind = 'engagement')                        AS engagements,
           count(x.viewer_key)                                                  AS keyed_rows,
           count(*) FILTER (WHERE x.kind = 'view' AND x.viewer_key IS NULL)     AS unkeyed_views,
           count(DISTINCT x.viewer_key)                                         AS unique_viewers,
           count(DISTINCT x.viewer_key)
                 FILTER (WHERE x.kind IN ('click', 'engagement') OR x.completed) AS engaged_viewers,
           COALESCE(sum(x.dwell_ms), 0)                                         AS dwell_ms_sum,
           count(x.dwell_ms)                                                    AS dwell_samples,
           count(*) FILTER (WHERE x.completed)                                  AS completions,
           count(x.completed)                                                   AS completion_samples
      INTO i
      FROM sponsorship.event_impressions x
     WHERE x.sponsor_id = a.sponsor_id AND x.event_id = a.event_id
       AND x.created_at >= v_from AND x.created_at < v_to;

    -- Ticket-page views and sales the sponsor referred, revenue kept per currency.
    SELECT COALESCE(sum(c.views), 0)::bigint   AS views,
           COALESCE(sum(c.tickets), 0)::bigint AS tickets,
           COALESCE(jsonb_object_agg(c.currency, c.revenue) FILTER (WHERE c.tickets > 0), '{}'::jsonb) AS revenue
      INTO t
      FROM (SELECT y.currency, sum(y.views) AS views, sum(y.tickets) AS tickets, sum(y.revenue_cents) AS revenue
              FROM sponsorship.ticket_analytics y
             WHERE y.sponsor_id = a.sponsor_id AND y.event_id = a.event_id
               AND y.created_at >= v_from AND y.created_at < v_to
             GROUP BY y.currency) c;

    v_summary := jsonb_build_object(
                     'event_sponsorship_id', a.id,
                     'order_id', a.order_id,
                     'event_id', a.event_id,
                     'event_title', a.event_title,
                     'sponsor_id', a.sponsor_id,
                     'package_id', a.package_id,
                     'package_title', a.package_title,
                     'tier', a.tier,
                     'package_type', a.package_type,
                     'window_from', v_from,
                     'window_to', v_to,
                     'evaluated_at', now(),
                     'event_engagement_score', a.engagement_score,
                     'ticket_revenue_cents_by_currency', t.revenue)
              || sponsorship.roi_assess(jsonb_build_object(
                     'currency', a.currency,
                     'cost_cents', a.amount_cents,
                     'expected_reach', a.expected_reach,
                     'event_attendees', a.attendee_count,
                     'views', i.views,
                     'clicks', i.clicks,
                     'engagements', i.engagements,
                     'keyed_rows', i.keyed_rows,
                     'unkeyed_views', i.unkeyed_views,
                     'unique_viewers', i.unique_viewers,
                     'engaged_viewers', i.engaged_viewers,
                     'dwell_ms_sum', i.dwell_ms_sum,
                     'dwell_samples', i.dwell_samples,
                     'completions', i.completions,
                     'completion_samples', i.completion_samples,
                     'ticket_views', t.views,
                     'tickets', t.tickets));

    UPDATE sponsorship.event_sponsorships
       SET roi_summary = v_summary, status = 'evaluated', evaluated_at = now()
     WHERE id = a.id;
    RETURN v_summary;
END
$fn$;
COMMENT ON FUNCTION sponsorship.evaluate_sponsorship_roi(uuid) IS
    'Evaluates a completed activation: stores and returns roi_summary and moves it to evaluated (again on re-evaluation). '
    'Window: started_at to completed_at, or else the event''s start - 30 days to its end + 7 days. Keys: impressions, '
    'clicks, engagements, unique_reach (distinct viewer keys; impressions when none was recorded, see reach_basis), '
    'unattributed_impressions, expected_reach, reach_delivered_ratio, impressions_per_person, click_through_rate, '
    'engaged_attendees (distinct viewers who clicked, engaged or completed), engagement_rate, avg_dwell_ms, completions, '
    'completion_rate, ticket_views, tickets_sold, ticket_conversion_rate, ticket_revenue_cents_by_currency, '
    'event_attendees, event_engagement_score, cost_cents (the order amount), cpm_cents, cost_per_engaged_attendee_cents, '
    'cost_per_thousand_reach_cents (all in the order''s currency, minor units, rounded half up), currency, '
    'currency_exponent, verdict (exceeded >= 120% of expected reach, met >= 100%, nearly_met >= 80%, under_delivered, '
    'no_delivery, no_expectation), verdict_reason, the window and the package.';

-- The scheduled form: evaluates completed activations (oldest first), at most p_limit per
-- call so a run stays short; concurrent runs skip each other's rows.
CREATE FUNCTION sponsorship.evaluate_completed_sponsorships(p_limit integer DEFAULT 200) RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    r        record;
    n        integer := 0;
    v_state  text;
    v_error  text;
BEGIN
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'p_limit must be between 1 and 100000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR r IN
        SELECT es.id
          FROM sponsorship.event_sponsorships es
          JOIN sponsorship.sponsorship_orders o ON o.id = es.order_id
         WHERE es.status = 'completed'
           AND o.status IN ('accepted', 'live', 'completed') AND o.stripe_charge_id IS NOT NULL
         ORDER BY es.completed_at, es.id
         LIMIT p_limit
           FOR UPDATE OF es SKIP LOCKED
    LOOP
        -- one activation's bad data must not stop the others: it stays completed, and the
        -- reason is reported (to the caller and the server log) on every run until fixed
        BEGIN
            PERFORM sponsorship.evaluate_sponsorship_roi(r.id);
            n := n + 1;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_error = MESSAGE_TEXT;
            RAISE WARNING 'event sponsorship % was not evaluated (SQLSTATE %): %', r.id, v_state, v_error;
        END;
    END LOOP;
    RETURN n;
END
$fn$;
COMMENT ON FUNCTION sponsorship.evaluate_completed_sponsorships(integer) IS
    'Evaluates up to p_limit completed activations of paid orders (the scheduled ROI job), each in a subtransaction: '
    'one that fails is reported with a WARNING and left completed. Returns how many were evaluated. Service-only.';

CREATE INDEX event_sponsorships_completed_idx ON sponsorship.event_sponsorships (completed_at, id)
    WHERE status = 'completed';

CREATE VIEW sponsorship.v_sponsorship_roi WITH (security_invoker = true) AS
SELECT es.id                                                     AS event_sponsorship_id,
       es.order_id,
       es.sponsor_id,
       s.name                                                    AS sponsor_name,
       es.event_id,
       es.roi_summary ->> 'event_title'                          AS event_title,
       es.roi_summary ->> 'package_title'                        AS package_title,
       es.roi_summary ->> 'tier'                                 AS tier,
       es.status,
       es.evaluated_at,
       es.roi_summary ->> 'currency'                             AS currency,
       (es.roi_summary ->> 'cost_cents')::bigint                 AS cost_cents,
       (es.roi_summary ->> 'expected_reach')::bigint             AS expected_reach,
       (es.roi_summary ->> 'unique_reach')::bigint               AS unique_reach,
       es.roi_summary ->> 'reach_basis'                          AS reach_basis,
       (es.roi_summary ->> 'reach_delivered_ratio')::numeric     AS reach_delivered_ratio,
       (es.roi_summary ->> 'impressions')::bigint                AS impressions,
       (es.roi_summary ->> 'engaged_attendees')::bigint          AS engaged_attendees,
       (es.roi_summary ->> 'engagement_rate')::numeric           AS engagement_rate,
       (es.roi_summary ->> 'avg_dwell_ms')::bigint               AS avg_dwell_ms,
       (es.roi_summary ->> 'completion_rate')::numeric           AS completion_rate,
       (es.roi_summary ->> 'ticket_views')::bigint               AS ticket_views,
       (es.roi_summary ->> 'tickets_sold')::bigint               AS tickets_sold,
       (es.roi_summary ->> 'ticket_conversion_rate')::numeric    AS ticket_conversion_rate,
       (es.roi_summary ->> 'cpm_cents')::bigint                  AS cpm_cents,
       (es.roi_summary ->> 'cost_per_engaged_attendee_cents')::bigint AS cost_per_engaged_attendee_cents,
       es.roi_summary ->> 'verdict'                              AS verdict,
       es.roi_summary ->> 'verdict_reason'                       AS verdict_reason
  FROM sponsorship.event_sponsorships es
  JOIN sponsorship.sponsors s ON s.id = es.sponsor_id
 WHERE es.roi_summary IS NOT NULL;
COMMENT ON VIEW sponsorship.v_sponsorship_roi IS
    'The headline ROI figures of evaluated activations the caller is a party to (a sponsor''s members see their own; '
    'the organizer''s members see their events''). Money in the order''s currency, minor units.';

---------------------------------------------------------------------------------------
-- The audit log
---------------------------------------------------------------------------------------

CREATE TABLE sponsorship.audit_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_user_id  uuid,
    actor_role     text,
    object_type    text NOT NULL CHECK (object_type IN ('payout_configuration', 'sponsorship_match', 'platform_setting')),
    object_id      text NOT NULL,
    action         text NOT NULL CHECK (action IN ('insert', 'update', 'delete', 'truncate', 'observed')),
    org_id         uuid,
    sponsor_id     uuid,
    event_id       uuid,
    old_values     jsonb CHECK (old_values IS NULL OR jsonb_typeof(old_values) = 'object'),
    new_values     jsonb CHECK (new_values IS NULL OR jsonb_typeof(new_values) = 'object'),
    context        jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(context) = 'object'),
    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id()
);
-- No foreign keys: the trail outlives what it describes.
CREATE INDEX audit_log_object_idx ON sponsorship.audit_log (object_type, object_id, id DESC);
CREATE INDEX audit_log_org_idx ON sponsorship.audit_log (org_id, id DESC) WHERE org_id IS NOT NULL;
CREATE INDEX audit_log_sponsor_idx ON sponsorship.audit_log (sponsor_id, id DESC) WHERE sponsor_id IS NOT NULL;
COMMENT ON TABLE sponsorship.audit_log IS
    'Append-only trail of money settings (payout_configurations: Connect account, fee rate, floor and cap, minimum '
    'payout, schedule, auto payout), match decisions (sponsorship_matches.status) and observed changes of the '
    'platform''s default fee. Readable by the service role, by organization admins for their organization and by '
    'sponsor admins for their matches; nobody updates or deletes it.';
COMMENT ON COLUMN sponsorship.audit_log.actor_user_id IS 'The acting user: the sub claim of the request, if any.';
COMMENT ON COLUMN sponsorship.audit_log.actor_role IS
    'The database role the session acted as (SET ROLE or the login role; not changed by SECURITY DEFINER). NULL for '
    'an observed setting change, whose author Postgres does not record.';
COMMENT ON COLUMN sponsorship.audit_log.old_values IS 'The audited columns before the change (only the changed ones for an update).';
COMMENT ON COLUMN sponsorship.audit_log.new_values IS 'The audited columns after the change (only the changed ones for an update).';

ALTER TABLE sponsorship.audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_service_read ON sponsorship.audit_log FOR SELECT TO service_role USING (true);
CREATE POLICY audit_org_admins_read ON sponsorship.audit_log FOR SELECT TO authenticated
    USING (org_id IS NOT NULL AND sponsorship.has_org_role(org_id, 'admin'));
CREATE POLICY audit_sponsor_admins_read ON sponsorship.audit_log FOR SELECT TO authenticated
    USING (object_type = 'sponsorship_match' AND sponsorship.has_sponsor_role(sponsor_id, 'admin'));
REVOKE ALL ON sponsorship.audit_log FROM PUBLIC, anon, authenticated, service_role;
GRANT SELECT ON sponsorship.audit_log TO authenticated, service_role;

-- Not even the table's owner changes history.
CREATE FUNCTION sponsorship.fn_audit_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: its rows cannot be updated, deleted or truncated'
          USING ERRCODE = 'insufficient_privilege';
END
$fn$;
COMMENT ON FUNCTION sponsorship.fn_audit_log_is_append_only() IS 'Trigger: refuses every UPDATE, DELETE and TRUNCATE of audit_log.';
CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON sponsorship.audit_log
    FOR EACH ROW EXECUTE FUNCTION sponsorship.fn_audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON sponsorship.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION sponsorship.fn_audit_log_is_append_only();
-- ... also under session_replication_role = replica
ALTER TABLE sponsorship.audit_log ENABLE ALWAYS TRIGGER audit_log_no_update_or_delete;
ALTER TABLE sponsorship.audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;

-- payout_configurations: the money settings, one audit row per changed row.
CREATE FUNCTION sponsorship.fn_audit_payout_configuration() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    v_columns  CONSTANT text[] := ARRAY['org_id', 'stripe_connect_account_id', 'platform_fee_bps', 'min_fee_cents',
                                        'max_fee_cents', 'minimum_payout_cents', 'payout_schedule',
                                        'auto_payout_enabled'];
    v_old      jsonb;
    v_new      jsonb;
    v_was      jsonb := '{}'::jsonb;
    v_is       jsonb := '{}'::jsonb;
    c          text;
BEGIN
    IF TG_OP <> 'INSERT' THEN v_old := to_jsonb(OLD); END IF;
    IF TG_OP <> 'DELETE' THEN v_new := to_jsonb(NEW); END IF;
    FOREACH c IN ARRAY v_columns LOOP
        CONTINUE WHEN TG_OP = 'UPDATE' AND (v_old -> c) IS NOT DISTINCT FROM (v_new -> c);
        IF v_old IS NOT NULL THEN v_was := v_was || jsonb_build_object(c, v_old -> c); END IF;
        IF v_new IS NOT NULL THEN v_is := v_is || jsonb_build_object(c, v_new -> c); END IF;
    END LOOP;
    IF TG_OP = 'UPDATE' AND v_is = '{}'::jsonb THEN
        RETURN NULL;  -- only bookkeeping columns changed (last_auto_payout_at, updated_at)
    END IF;
    INSERT INTO sponsorship.audit_log
           (actor_user_id, actor_role, object_type, object_id, action, org_id, old_values, new_values)
    VALUES (sponsorship.current_user_id(), sponsorship.caller_role(), 'payout_configuration',
            COALESCE(v_new, v_old) ->> 'id', lower(TG_OP), (COALESCE(v_new, v_old) ->> 'org_id')::uuid,
            CASE WHEN TG_OP <> 'INSERT' THEN v_was END, CASE WHEN TG_OP <> 'DELETE' THEN v_is END);
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION sponsorship.fn_audit_payout_configuration() IS
    'Trigger: one audit_log row per inserted, deleted or money-changing updated payout configuration.';
CREATE TRIGGER payout_configurations_audit AFTER INSERT OR UPDATE OR DELETE ON sponsorship.payout_configurations
    FOR EACH ROW EXECUTE FUNCTION sponsorship.fn_audit_payout_configuration();

-- TRUNCATE fires no row trigger: log every configuration it removes.
CREATE FUNCTION sponsorship.fn_audit_payout_configuration_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
BEGIN
    INSERT INTO sponsorship.audit_log
           (actor_user_id, actor_role, object_type, object_id, action, org_id, old_values)
    SELECT sponsorship.current_user_id(), sponsorship.caller_role(), 'payout_configuration', c.id::text, 'truncate',
           c.org_id,
           jsonb_build_object('org_id', c.org_id, 'stripe_connect_account_id', c.stripe_connect_account_id,
                              'platform_fee_bps', c.platform_fee_bps, 'min_fee_cents', c.min_fee_cents,
                              'max_fee_cents', c.max_fee_cents, 'minimum_payout_cents', c.minimum_payout_cents,
                              'payout_schedule', c.payout_schedule, 'auto_payout_enabled', c.auto_payout_enabled)
      FROM sponsorship.payout_configurations c;
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION sponsorship.fn_audit_payout_configuration_truncate() IS
    'Trigger: one audit_log row per payout configuration removed by TRUNCATE.';
CREATE TRIGGER payout_configurations_audit_truncate BEFORE TRUNCATE ON sponsorship.payout_configurations
    FOR EACH STATEMENT EXECUTE FUNCTION sponsorship.fn_audit_payout_configuration_truncate();

-- sponsorship_matches: review decisions. Rescoring never touches status, and the WHEN
-- clauses keep the trigger out of its way.
CREATE FUNCTION sponsorship.fn_audit_match_status() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
BEGIN
    INSERT INTO sponsorship.audit_log
           (actor_user_id, actor_role, object_type, object_id, action, org_id, sponsor_id, event_id,
            old_values, new_values, context)
    VALUES (sponsorship.current_user_id(), sponsorship.caller_role(), 'sponsorship_match', NEW.id::text,
            lower(TG_OP), sponsorship.event_org_id(NEW.event_id), NEW.sponsor_id, NEW.event_id,
            CASE WHEN TG_OP = 'UPDATE' THEN jsonb_build_object('status', OLD.status) END,
            jsonb_build_object('status', NEW.status),
            jsonb_build_object('score', NEW.score, 'weights_version', NEW.weights_version,
                               'model_version', NEW.model_version));
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION sponsorship.fn_audit_match_status() IS
    'Trigger: one audit_log row per match status change (and per match inserted already accepted or rejected).';
CREATE TRIGGER sponsorship_matches_status_audit AFTER UPDATE OF status ON sponsorship.sponsorship_matches
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION sponsorship.fn_audit_match_status();
CREATE TRIGGER sponsorship_matches_decided_audit AFTER INSERT ON sponsorship.sponsorship_matches
    FOR EACH ROW WHEN (NEW.status IN ('accepted', 'rejected'))
    EXECUTE FUNCTION sponsorship.fn_audit_match_status();

-- The platform's default fee is a setting (postgresql.conf or ALTER SYSTEM, and ALTER
-- DATABASE / ALTER ROLE ... SET overrides), whose changes Postgres reports to no one. What is
-- logged is the server-wide state, the same from every session: the value the configuration
-- files give (or the built-in default) and every per-database and per-role override. A
-- session's own SET is not a platform setting and is not followed. The state is observed where
-- it matters: at CREATE EXTENSION, in every queue_sponsorship_payout(), whenever the payout
-- worker sees a new value, and whenever this function is called (a scheduled job may); a state
-- different from the last one logged is recorded.
CREATE FUNCTION sponsorship.observe_platform_settings() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    v_observer  text := sponsorship.caller_role();  -- (also loads the library that defines the settings)
    v_name      text;
    v_state     jsonb;
    v_last      jsonb;
    v_written   integer := 0;
BEGIN
    FOREACH v_name IN ARRAY ARRAY['sponsorship.platform_fee_bps'] LOOP
        SELECT jsonb_build_object(
                   'value', COALESCE(
                       (SELECT f.setting FROM pg_catalog.pg_file_settings f
                         WHERE f.name = v_name AND f.applied AND f.error IS NULL
                         ORDER BY f.seqno DESC LIMIT 1),
                       (SELECT s.boot_val FROM pg_catalog.pg_settings s WHERE s.name = v_name)),
                   'source', CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_file_settings f
                                                WHERE f.name = v_name AND f.applied AND f.error IS NULL)
                                  THEN 'configuration file' ELSE 'default' END,
                   'overrides', COALESCE(
                       (SELECT jsonb_object_agg(
                                   CASE WHEN d.datname IS NOT NULL AND r.rolname IS NOT NULL
                                        THEN 'role ' || r.rolname || ' in database ' || d.datname
                                        WHEN d.datname IS NOT NULL THEN 'database ' || d.datname
                                        ELSE 'role ' || r.rolname END,
                                   substr(c.cfg, length(v_name) + 2))
                          FROM pg_catalog.pg_db_role_setting x
                          LEFT JOIN pg_catalog.pg_database d ON d.oid = x.setdatabase
                          LEFT JOIN pg_catalog.pg_roles r ON r.oid = x.setrole
                          CROSS JOIN LATERAL unnest(x.setconfig) c(cfg)
                         WHERE c.cfg LIKE v_name || '=%'), '{}'::jsonb))
          INTO v_state;
        CONTINUE WHEN v_state ->> 'value' IS NULL;  -- the setting is not defined (library not loaded)
        SELECT l.new_values INTO v_last
          FROM sponsorship.audit_log l
         WHERE l.object_type = 'platform_setting' AND l.object_id = v_name
         ORDER BY l.id DESC LIMIT 1;
        CONTINUE WHEN v_last IS NOT DISTINCT FROM v_state;
        -- a change: one writer at a time per setting, and look again (READ COMMITTED sees a
        -- row another writer committed while this one waited)
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('sponsorship.audit:' || v_name));
        SELECT l.new_values INTO v_last
          FROM sponsorship.audit_log l
         WHERE l.object_type = 'platform_setting' AND l.object_id = v_name
         ORDER BY l.id DESC LIMIT 1;
        CONTINUE WHEN v_last IS NOT DISTINCT FROM v_state;
        INSERT INTO sponsorship.audit_log (actor_user_id, actor_role, object_type, object_id, action, old_values, new_values, context)
        VALUES (NULL, NULL, 'platform_setting', v_name, 'observed', v_last, v_state,
                jsonb_build_object('observed_by', v_observer, 'observed_by_user', sponsorship.current_user_id()));
        v_written := v_written + 1;
    END LOOP;
    RETURN v_written;
END
$fn$;
COMMENT ON FUNCTION sponsorship.observe_platform_settings() IS
    'Logs the server-wide state of the platform''s default fee setting (configuration files and per-database / per-role '
    'overrides) in audit_log when it differs from the state last logged; returns the rows written. Called by '
    'queue_sponsorship_payout() and the payout worker; service-only.';

-- The value in force when the extension was created.
SELECT sponsorship.observe_platform_settings();

-- Privileges (40_security.sql ran before these objects existed).
REVOKE ALL ON sponsorship.v_sponsorship_roi FROM PUBLIC;
GRANT SELECT ON sponsorship.v_sponsorship_roi TO authenticated, service_role;
