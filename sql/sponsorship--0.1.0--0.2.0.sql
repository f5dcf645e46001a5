-- sponsorship 0.1.0 -> 0.2.0: post-event ROI and the audit trail (issue 8), operations (issue 6).
-- Every object below is defined as a fresh 0.2.0 install defines it;
-- tests/integration/upgrade.rs checks that an upgraded database and a fresh one have the
-- same objects, definitions, comments and privileges, and that 0.1.0's data and API survive.
\echo Use "ALTER EXTENSION sponsorship UPDATE TO '0.2.0'" to load this file. \quit


---------------------------------------------------------------------------------------
-- The Rust functions new or changed in 0.2.0 (src/api/roi.rs, owner.rs, ops.rs, matching.rs)
---------------------------------------------------------------------------------------

CREATE  FUNCTION "caller_role"() RETURNS TEXT /* String */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'caller_role_wrapper';

CREATE OR REPLACE FUNCTION "fn_compute_match_score"(
	"p_event_id" uuid, /* Option < Uuid > */
	"p_sponsor_id" uuid /* Option < Uuid > */
) RETURNS TABLE (
	"score" NUMERIC,  /* AnyNumeric */
	"breakdown" jsonb  /* Jsonb */
)
STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'fn_compute_match_score_wrapper';

CREATE  FUNCTION "log_refresh_failure"(
	"p_view" TEXT, /* & str */
	"p_started_epoch" double precision, /* f64 */
	"p_concurrent" bool, /* bool */
	"p_sqlstate" TEXT, /* & str */
	"p_message" TEXT /* & str */
) RETURNS bool /* bool */
STRICT VOLATILE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'log_refresh_failure_wrapper';

CREATE  FUNCTION "roi_assess"(
	"p_facts" jsonb /* JsonB */
) RETURNS jsonb /* JsonB */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'roi_assess_wrapper';

---------------------------------------------------------------------------------------
-- The data model (sql/10_tables.sql): what ROI needs in the fact tables, and activations
-- tied to their order's event and sponsor. New columns go last, as in a fresh install.
---------------------------------------------------------------------------------------
ALTER TABLE sponsorship.event_impressions
    ADD COLUMN viewer_key text CHECK (length(viewer_key) BETWEEN 1 AND 128),
    ADD COLUMN completed boolean;
DROP INDEX sponsorship.event_impressions_sponsor_idx;
CREATE INDEX event_impressions_sponsor_idx ON sponsorship.event_impressions (sponsor_id, event_id, created_at)
    WHERE sponsor_id IS NOT NULL;

ALTER TABLE sponsorship.ticket_analytics
    DROP CONSTRAINT ticket_analytics_tickets_check,
    ADD CONSTRAINT ticket_analytics_tickets_check CHECK (tickets >= 0),
    ALTER COLUMN tickets SET DEFAULT 0,
    ALTER COLUMN revenue_cents SET DEFAULT 0,
    ADD COLUMN views integer NOT NULL DEFAULT 0 CHECK (views >= 0),
    ADD CONSTRAINT ticket_analytics_records_something CHECK (views > 0 OR tickets > 0),
    ADD CONSTRAINT ticket_analytics_revenue_needs_tickets CHECK (tickets > 0 OR revenue_cents = 0);
CREATE INDEX ticket_analytics_sponsor_idx ON sponsorship.ticket_analytics (sponsor_id, event_id, created_at)
    WHERE sponsor_id IS NOT NULL;

ALTER TABLE sponsorship.sponsorship_orders
    ADD CONSTRAINT sponsorship_orders_id_parties_key UNIQUE (id, event_id, sponsor_id);
-- An activation that names another event or sponsor than its order's stops the upgrade here:
-- fix event_sponsorships.event_id / sponsor_id first.
ALTER TABLE sponsorship.event_sponsorships
    ADD COLUMN evaluated_at timestamptz,
    ADD CONSTRAINT event_sponsorships_parties_of_order
        FOREIGN KEY (order_id, event_id, sponsor_id)
        REFERENCES sponsorship.sponsorship_orders (id, event_id, sponsor_id) ON DELETE CASCADE,
    ADD CONSTRAINT event_sponsorships_completed_after_start
        CHECK (completed_at IS NULL OR started_at IS NULL OR completed_at >= started_at),
    ADD CONSTRAINT event_sponsorships_evaluated_has_summary
        CHECK (status <> 'evaluated' OR (roi_summary IS NOT NULL AND evaluated_at IS NOT NULL));


---------------------------------------------------------------------------------------
-- sql/10_tables.sql: partition creation that moves rows out of DEFAULT
---------------------------------------------------------------------------------------

-- Creates the partition of `p_parent` (a fact table) holding the month that contains
-- `p_month`, if it does not exist yet. Months are UTC months, whatever the session's time
-- zone. Rows of that month already in the DEFAULT partition move into the new one, in the
-- same transaction (writers to the parent wait meanwhile). RLS is enabled on every partition
-- (they are tables too). SECURITY DEFINER: creating a partition takes the parent's owner;
-- EXECUTE is for the service role (90_finalize.sql).
CREATE FUNCTION sponsorship.create_month_partition(p_parent regclass, p_month date,
                                                   OUT partition_name text, OUT created boolean, OUT rows_moved bigint)
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    v_from     date;
    v_to       date;
    v_lo       timestamptz;
    v_hi       timestamptz;
    v_default  regclass;
    v_existing regclass;
    v_columns  text;
BEGIN
    IF p_parent IS NULL OR p_month IS NULL THEN
        RAISE EXCEPTION 'p_parent and p_month must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_parent NOT IN ('sponsorship.event_impressions'::regclass, 'sponsorship.ticket_analytics'::regclass) THEN
        RAISE EXCEPTION '% is not a partitioned fact table of sponsorship (event_impressions, ticket_analytics)', p_parent
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_from := date_trunc('month', p_month)::date;
    v_to := (date_trunc('month', p_month) + interval '1 month')::date;
    v_lo := v_from::timestamp AT TIME ZONE 'UTC';
    v_hi := v_to::timestamp AT TIME ZONE 'UTC';
    partition_name := format('%s_y%sm%s', (SELECT relname FROM pg_catalog.pg_class WHERE oid = p_parent),
                             to_char(v_from, 'YYYY'), to_char(v_from, 'MM'));
    created := false;
    rows_moved := 0;
    -- one creator at a time per table
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('sponsorship.partition:' || p_parent::text));
    v_existing := to_regclass(format('sponsorship.%I', partition_name));
    IF v_existing IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = v_existing AND i.inhparent = p_parent) THEN
            RAISE EXCEPTION 'sponsorship.% exists but is not a partition of % (a month detached by retention?)',
                  partition_name, p_parent
                  USING ERRCODE = 'duplicate_table',
                        HINT = 'Archive and drop it, or rename it, before making this month again.';
        END IF;
        RETURN;
    END IF;
    SELECT i.inhrelid::regclass INTO v_default
      FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = p_parent AND pg_catalog.pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT';
    IF v_default IS NOT NULL THEN
        -- no writes while rows change partition
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', p_parent);
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE created_at >= %L AND created_at < %L)',
                       v_default, v_lo, v_hi) INTO created;
    END IF;
    IF created THEN
        -- the DEFAULT partition holds rows of this month: a plain PARTITION OF would fail
        -- ("would be violated by some row"); build the month beside it, move them, attach it
        EXECUTE format('CREATE TABLE sponsorship.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)',
                       partition_name, p_parent);
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO v_columns
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = p_parent AND a.attnum > 0 AND NOT a.attisdropped;
        EXECUTE format('WITH moved AS (DELETE FROM %s WHERE created_at >= %L AND created_at < %L RETURNING %s) '
                       'INSERT INTO sponsorship.%I (%s) SELECT %s FROM moved',
                       v_default, v_lo, v_hi, v_columns, partition_name, v_columns, v_columns);
        GET DIAGNOSTICS rows_moved = ROW_COUNT;
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION sponsorship.%I FOR VALUES FROM (%L) TO (%L)',
                       p_parent, partition_name, v_lo, v_hi);
    ELSE
        EXECUTE format('CREATE TABLE sponsorship.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                       partition_name, p_parent, v_lo, v_hi);
    END IF;
    created := true;
    EXECUTE format('ALTER TABLE sponsorship.%I ENABLE ROW LEVEL SECURITY', partition_name);
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        EXECUTE format('CREATE POLICY service_role_all ON sponsorship.%I TO service_role '
                       'USING (true) WITH CHECK (true)', partition_name);
        EXECUTE format('GRANT ALL ON sponsorship.%I TO service_role', partition_name);
    END IF;
    EXECUTE format('COMMENT ON TABLE sponsorship.%I IS %L', partition_name,
                   format('Partition of %s for %s', p_parent, to_char(v_from, 'YYYY-MM')));
END
$fn$;
COMMENT ON FUNCTION sponsorship.create_month_partition(regclass, date) IS
    'Creates (if missing) the monthly partition of event_impressions or ticket_analytics holding the given date, '
    'moving that month''s rows out of the DEFAULT partition; returns its name, whether it was created and the rows moved.';

CREATE OR REPLACE FUNCTION sponsorship.ensure_month_partition(p_parent regclass, p_month date) RETURNS text
LANGUAGE sql
AS $fn$ SELECT (sponsorship.create_month_partition(p_parent, p_month)).partition_name $fn$;
COMMENT ON FUNCTION sponsorship.ensure_month_partition(regclass, date) IS
    'Creates (if missing) the monthly partition of a fact table that holds the given date; returns its name.';


---------------------------------------------------------------------------------------
-- sql/20_quality.sql: refreshes log their failures
---------------------------------------------------------------------------------------

-- Refreshes a materialized view of this extension and records the run in mv_refresh_log.
-- A failure is raised to the caller (naming the view), never swallowed, and logged by a
-- process of its own (log_refresh_failure()), so the row stays when the caller rolls back.
-- SECURITY DEFINER: only the owner may refresh a materialized view; EXECUTE is granted to
-- service_role alone (see 40_security.sql).
CREATE OR REPLACE FUNCTION sponsorship.refresh_materialized_view(p_view text, p_concurrently boolean DEFAULT true)
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


---------------------------------------------------------------------------------------
-- sql/30_views.sql: quality scores behind a security barrier; ticket-page views; the sponsors' ROI record
---------------------------------------------------------------------------------------

CREATE OR REPLACE VIEW sponsorship.event_quality_scores WITH (security_barrier) AS
SELECT q.*
  FROM sponsorship.mv_event_quality_scores q
  JOIN sponsorship.events e ON e.id = q.event_id
 WHERE e.visibility = 'public'
    OR sponsorship.has_org_role(e.org_id, 'viewer')
    OR pg_catalog.pg_has_role('service_role', 'USAGE');

CREATE OR REPLACE VIEW sponsorship.v_event_performance_summary WITH (security_invoker = true) AS
SELECT e.id                        AS event_id,
       e.org_id,
       e.title,
       e.category,
       e.city,
       e.country,
       e.start_at,
       e.end_at,
       e.visibility,
       e.capacity,
       i.attendee_count,
       i.avg_dwell_time_ms,
       i.engagement_score,
       i.ticket_conversion_rate,
       i.social_mentions,
       i.sentiment_score,
       q.final_quality_score,
       q.quality_tier,
       COALESCE(imp.impressions, 0)          AS impressions,
       COALESCE(imp.clicks, 0)               AS clicks,
       COALESCE(imp.sponsor_impressions, 0)  AS sponsor_impressions,
       COALESCE(tix.tickets_sold, 0)         AS tickets_sold,
       COALESCE(tix.ticket_revenue_cents_by_currency, '{}'::jsonb) AS ticket_revenue_cents_by_currency,
       COALESCE(pkg.active_packages, 0)      AS active_packages,
       COALESCE(pkg.package_units_offered, 0) AS package_units_offered,
       COALESCE(pkg.package_units_sold, 0)   AS package_units_sold,
       COALESCE(ord.paid_orders, 0)          AS paid_orders,
       COALESCE(ord.sponsors, 0)             AS sponsors,
       COALESCE(ord.sponsorship_revenue_cents_by_currency, '{}'::jsonb) AS sponsorship_revenue_cents_by_currency,
       COALESCE(tix.ticket_page_views, 0)    AS ticket_page_views  -- 0.2.0
  FROM sponsorship.events e
  LEFT JOIN sponsorship.event_audience_insights i ON i.event_id = e.id
  LEFT JOIN sponsorship.event_quality_scores q ON q.event_id = e.id
  LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE x.kind = 'view')          AS impressions,
               count(*) FILTER (WHERE x.kind = 'click')         AS clicks,
               count(*) FILTER (WHERE x.sponsor_id IS NOT NULL) AS sponsor_impressions
          FROM sponsorship.event_impressions x WHERE x.event_id = e.id) imp ON true
  LEFT JOIN LATERAL (
        SELECT sum(c.views)::bigint AS ticket_page_views,
               sum(c.tickets)::bigint AS tickets_sold,
               jsonb_object_agg(c.currency, c.revenue) FILTER (WHERE c.tickets > 0) AS ticket_revenue_cents_by_currency
          FROM (SELECT t.currency, sum(t.views) AS views, sum(t.tickets) AS tickets, sum(t.revenue_cents) AS revenue
                  FROM sponsorship.ticket_analytics t WHERE t.event_id = e.id
                 GROUP BY t.currency) c) tix ON true
  LEFT JOIN LATERAL (
        SELECT count(*) AS active_packages,
               sum(p.inventory)::bigint AS package_units_offered,
               sum(p.sold)::bigint AS package_units_sold
          FROM sponsorship.sponsorship_packages p WHERE p.event_id = e.id AND p.is_active) pkg ON true
  LEFT JOIN LATERAL (
        SELECT sum(c.orders)::bigint AS paid_orders,
               (SELECT count(DISTINCT o2.sponsor_id) FROM sponsorship.sponsorship_orders o2
                 WHERE o2.event_id = e.id AND o2.status IN ('accepted','live','completed')
                   AND o2.stripe_charge_id IS NOT NULL) AS sponsors,
               jsonb_object_agg(c.currency, c.amount) AS sponsorship_revenue_cents_by_currency
          FROM (SELECT o.currency, count(*) AS orders, sum(o.amount_cents) AS amount
                  FROM sponsorship.sponsorship_orders o
                 WHERE o.event_id = e.id AND o.status IN ('accepted','live','completed')
                   AND o.stripe_charge_id IS NOT NULL
                 GROUP BY o.currency) c) ord ON true;

-- A sponsor's public ROI record: how its evaluated activations delivered against what their
-- packages promised. Activations are private to the parties, so this reveals aggregates
-- only, and only over at least 3 evaluations (with fewer, one deal's figures could be read
-- off), rounded to two decimals.
CREATE FUNCTION sponsorship.sponsor_roi_record(p_sponsor_id uuid,
                                               OUT evaluated_sponsorships bigint,
                                               OUT median_reach_delivered_ratio numeric,
                                               OUT expectation_met_share numeric)
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
AS $fn$
    SELECT n,
           CASE WHEN n >= 3 THEN round(median::numeric, 2) END,
           CASE WHEN n >= 3 AND judged > 0 THEN round(met::numeric / judged, 2) END
      FROM (SELECT count(*) AS n,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY (es.roi_summary ->> 'reach_delivered_ratio')::float8) AS median,
                   count(*) FILTER (WHERE es.roi_summary ->> 'verdict' IN ('met', 'exceeded')) AS met,
                   count(*) FILTER (WHERE es.roi_summary ->> 'reach_delivered_ratio' IS NOT NULL) AS judged
              FROM sponsorship.event_sponsorships es
             WHERE es.sponsor_id = p_sponsor_id AND es.status = 'evaluated') x
$fn$;

CREATE OR REPLACE VIEW sponsorship.v_sponsor_marketplace WITH (security_invoker = true) AS
SELECT s.id                                    AS sponsor_id,
       s.name,
       s.industry,
       s.company_size,
       s.website_url,
       s.logo_url,
       s.brand_values,
       sp.annual_budget_cents,
       sp.currency,
       sp.preferred_categories,
       sp.regions,
       sp.brand_objectives ->> 'description'   AS objectives_description,
       sp.objectives_embedding IS NOT NULL     AS has_objectives_embedding,
       sponsorship.sponsor_events_sponsored(s.id) AS events_sponsored,
       s.created_at                            AS listed_since,
       -- 0.2.0
       roi.evaluated_sponsorships,
       roi.median_reach_delivered_ratio,
       roi.expectation_met_share
  FROM sponsorship.sponsors s
  LEFT JOIN sponsorship.sponsor_profiles sp ON sp.sponsor_id = s.id
  CROSS JOIN LATERAL sponsorship.sponsor_roi_record(s.id) roi;


---------------------------------------------------------------------------------------
-- sql/60_embeddings.sql: a search's text has a length limit
---------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION sponsorship.check_search_args(p_query_text text, p_limit integer) RETURNS void
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


---------------------------------------------------------------------------------------
-- sql/70_payouts.sql: queueing a payout observes the default fee setting
---------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION sponsorship.queue_sponsorship_payout(p_order_id uuid, p_priority integer DEFAULT 0)
RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    v_order     record;
    v_conf      record;
    v_fee       bigint;
    v_stage     record;
    v_id        uuid;
    v_last      uuid;
    v_queued    integer := 0;
    v_due       integer := 0;
    v_small     integer := 0;
BEGIN
    IF p_order_id IS NULL THEN
        RAISE EXCEPTION 'p_order_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_priority IS NULL OR p_priority NOT BETWEEN -1000 AND 1000 THEN
        RAISE EXCEPTION 'p_priority must be between -1000 and 1000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- one caller at a time per order: concurrent calls wait here, then find the payout made
    SELECT o.*, e.org_id INTO v_order
      FROM sponsorship.sponsorship_orders o JOIN sponsorship.events e ON e.id = o.event_id
     WHERE o.id = p_order_id
       FOR UPDATE OF o;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % does not exist', p_order_id USING ERRCODE = 'no_data_found';
    END IF;
    -- (current_user is this function's owner here: ask about the role the session acts as)
    IF NOT (sponsorship.caller_is_service_role() OR sponsorship.has_org_role(v_order.org_id, 'admin')) THEN
        RAISE EXCEPTION 'only the service role or an admin of the organizer may queue this payout'
              USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_order.stripe_charge_id IS NULL OR v_order.status NOT IN ('accepted', 'live', 'completed') THEN
        RAISE EXCEPTION 'order % is not paid for: it needs a recorded charge and status accepted, live or completed (it is %, %)',
              p_order_id, v_order.status, CASE WHEN v_order.stripe_charge_id IS NULL THEN 'no charge' ELSE 'charged' END
              USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT * INTO v_conf FROM sponsorship.payout_configurations WHERE org_id = v_order.org_id;
    IF NOT FOUND OR v_conf.stripe_connect_account_id IS NULL THEN
        RAISE EXCEPTION 'organization % has no Stripe Connect account to pay out to', v_order.org_id
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    HINT = 'Set payout_configurations.stripe_connect_account_id for the organization.';
    END IF;
    -- the default fee may be about to apply: log it if it changed (audit_log). Once per
    -- transaction: reading the configuration files costs about a millisecond, and a batch
    -- (queue_due_payouts(), a loop over orders) queues thousands in one transaction.
    IF pg_catalog.current_setting('sponsorship_internal.fee_setting_observed', true) IS DISTINCT FROM 'on' THEN
        PERFORM sponsorship.observe_platform_settings();
        PERFORM pg_catalog.set_config('sponsorship_internal.fee_setting_observed', 'on', true);
    END IF;
    v_fee := COALESCE(v_order.application_fee_cents,
                      sponsorship.calculate_platform_fee(v_order.amount_cents, v_order.org_id, v_order.currency));
    IF v_order.application_fee_cents IS NULL THEN
        UPDATE sponsorship.sponsorship_orders SET application_fee_cents = v_fee WHERE id = p_order_id;
    END IF;

    FOR v_stage IN
        SELECT * FROM sponsorship.payout_stages(v_order.amount_cents, v_fee, v_order.currency, v_order.milestone,
                                                v_order.status)
    LOOP
        CONTINUE WHEN NOT v_stage.due;
        v_due := v_due + 1;
        SELECT p.id INTO v_id FROM sponsorship.sponsorship_payouts p
         WHERE p.order_id = p_order_id AND p.stage = v_stage.stage;
        IF FOUND THEN
            v_last := v_id;                      -- queued or paid before: the same payout
            CONTINUE;
        END IF;
        IF v_stage.net_cents <= 0 OR v_stage.net_cents < v_conf.minimum_payout_cents THEN
            v_small := v_small + 1;
            CONTINUE;
        END IF;
        INSERT INTO sponsorship.sponsorship_payouts
               (order_id, org_id, stage, gross_cents, fee_cents, amount_cents, currency, destination_account,
                idempotency_key)
        VALUES (p_order_id, v_order.org_id, v_stage.stage, v_stage.gross_cents, v_stage.fee_cents, v_stage.net_cents,
                v_order.currency, v_conf.stripe_connect_account_id,
                'sponsorship_' || p_order_id || '_' || v_stage.stage || '_transfer')
        RETURNING id INTO v_id;
        INSERT INTO sponsorship.payout_queue (payout_id, action, priority) VALUES (v_id, 'transfer', p_priority);
        v_queued := v_queued + 1;
        v_last := v_id;
    END LOOP;
    IF v_last IS NULL THEN
        IF v_small > 0 THEN
            RAISE EXCEPTION 'order %: the payout due is below the organization''s minimum payout of % minor units',
                  p_order_id, v_conf.minimum_payout_cents USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        RAISE EXCEPTION 'order %: no payout stage is due at status %', p_order_id, v_order.status
              USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF v_queued > 0 THEN
        PERFORM sponsorship.refresh_order_payout_status(p_order_id);
    END IF;
    RETURN v_last;
END
$fn$;


---------------------------------------------------------------------------------------
-- Comments of sql/10_tables.sql, 20_quality.sql and 30_views.sql (all of them: COMMENT ON is idempotent)
---------------------------------------------------------------------------------------

COMMENT ON TABLE sponsorship.organizations IS 'Event organizers: they list events and packages and are paid out.';
COMMENT ON TABLE sponsorship.org_members IS 'Who acts for an organization, and with which role (viewer < editor < admin < owner).';
COMMENT ON TABLE sponsorship.sponsors IS 'Brands that buy sponsorships; their public marketplace listing.';
COMMENT ON TABLE sponsorship.sponsor_members IS 'Who acts for a sponsor, and with which role (viewer < editor < admin < owner).';
COMMENT ON TABLE sponsorship.sponsor_profiles IS
    'What a sponsor wants: budget, objectives (brand_objectives.description is free text), target audience '
    '(age_segments, regions, interests), activation preferences, categories and regions; one per sponsor.';
COMMENT ON COLUMN sponsorship.sponsor_profiles.objectives_embedding IS
    'all-MiniLM-L6-v2 embedding (384 dimensions) of the objectives and audience text.';
COMMENT ON COLUMN sponsorship.sponsor_profiles.objectives_embedding_stale IS
    'True while objectives_embedding does not describe the current objectives text (backfill_embeddings() recomputes it).';
COMMENT ON COLUMN sponsorship.sponsor_profiles.regions IS
    'Cities, countries or ''global''; compared case-insensitively with event city/country.';
COMMENT ON TABLE sponsorship.events IS 'The marketplace listing of an event.';
COMMENT ON COLUMN sponsorship.events.visibility IS
    'public: listed for everyone; unlisted and private: visible to the organization''s members only.';
COMMENT ON COLUMN sponsorship.events.description_embedding IS
    'all-MiniLM-L6-v2 embedding (384 dimensions) of title, category and description.';
COMMENT ON COLUMN sponsorship.events.description_embedding_stale IS
    'True while description_embedding does not describe the current title, category and description (backfill_embeddings() recomputes it).';
COMMENT ON TABLE sponsorship.event_audience_insights IS
    'The measured audience of an event: size, dwell time, where attendees come from (place -> share), '
    'age segments (segment -> share), engagement 0..100, ticket conversion 0..1, social mentions, sentiment -1..1.';
COMMENT ON TABLE sponsorship.event_stat_snapshots IS 'Point-in-time values of an event metric (history of insights).';
COMMENT ON TABLE sponsorship.event_impressions IS
    'Raw impressions of an event listing or of a sponsor placement (sponsor_id set); monthly partitions.';
COMMENT ON COLUMN sponsorship.event_impressions.viewer_key IS
    'A pseudonymous, stable key of the person who saw it (a hashed visitor or attendee id, never an e-mail '
    'address); counts unique reach. NULL when unknown.';
COMMENT ON COLUMN sponsorship.event_impressions.completed IS
    'True when the placement was seen through (a video played to its end, a session attended to its close); '
    'NULL when the placement has no end to reach or it was not measured.';
COMMENT ON TABLE sponsorship.ticket_analytics IS
    'Raw ticket-page views and ticket sales by channel (sponsor_id set when a sponsor referral drove them); '
    'monthly partitions.';
COMMENT ON COLUMN sponsorship.ticket_analytics.views IS 'Views of the ticket page this row records (0 for a sale alone).';
COMMENT ON COLUMN sponsorship.ticket_analytics.tickets IS 'Tickets sold (0 for views alone).';
COMMENT ON TABLE sponsorship.sponsorship_packages IS
    'What an event sells to sponsors: tier, price (minor units), inventory and what was sold, benefits, expected reach.';
COMMENT ON TABLE sponsorship.sponsorship_orders IS
    'A sponsor buying a package: amount (minor units), lifecycle status, the Stripe charge, the platform fee, '
    'payout progress, milestone plan, proof of delivery and the sponsor''s review.';
COMMENT ON COLUMN sponsorship.sponsorship_orders.stripe_charge_id IS
    'The recorded charge: an order is paid for only when this is set.';
COMMENT ON COLUMN sponsorship.sponsorship_orders.milestone IS
    'Optional staged release of the payout, e.g. {"stages":[{"on":"accepted","share_bps":3000},{"on":"completed","share_bps":7000}]}.';
COMMENT ON TABLE sponsorship.event_sponsorships IS
    'The activation of a sold package: draft -> live -> completed -> evaluated, deliverables, ROI summary.';
COMMENT ON COLUMN sponsorship.event_sponsorships.roi_summary IS
    'Written by evaluate_sponsorship_roi(): reach, engagement, tickets and cost figures of the activation; '
    'see that function for every key.';
COMMENT ON COLUMN sponsorship.event_sponsorships.started_at IS
    'When the activation went live (set on the change to live when not given): the start of its ROI window.';
COMMENT ON COLUMN sponsorship.event_sponsorships.completed_at IS
    'When the activation completed (set on the change to completed when not given): the end of its ROI window.';
COMMENT ON COLUMN sponsorship.payout_configurations.last_auto_payout_at IS
    'When queue_due_payouts() last queued this organization''s eligible orders (auto_payout_enabled).';
COMMENT ON TABLE sponsorship.payout_configurations IS
    'How an organization is paid: its Stripe Connect account, fee rate in basis points (NULL: platform default), '
    'optional fee floor and cap, minimum payout and schedule.';
COMMENT ON TABLE sponsorship.sponsorship_payouts IS
    'The ledger of money sent to organizers: one row per order stage, with the Stripe transfer that paid it.';
COMMENT ON COLUMN sponsorship.payout_queue.maybe_sent IS
    'An attempt may have reached Stripe (its outcome was unknown, or its claim was taken over): never dead-lettered '
    'or cancelled, only resolved by resending with the same idempotency key.';
COMMENT ON COLUMN sponsorship.payout_queue.max_attempts IS
    'Attempts before the row is dead-lettered; NULL: sponsorship.payout_max_attempts.';
COMMENT ON TABLE sponsorship.payout_queue IS
    'Work for the payout processor: one Stripe call per row, retried with backoff, dead-lettered after max_attempts.';
COMMENT ON TABLE sponsorship.scoring_weights IS
    'Weights of the five match factors; exactly one active version; each version sums to 1.';
COMMENT ON TABLE sponsorship.sponsorship_matches IS
    'How well a sponsor fits an event: score in [0,1], overlap_metrics = the explained breakdown, review status.';
COMMENT ON TABLE sponsorship.fit_recalc_queue IS
    'Pairs whose match score must be recomputed; a row with only event_id or only sponsor_id means against everything.';
COMMENT ON TABLE sponsorship.mv_refresh_log IS 'Every materialized view refresh: when, how long, outcome and error.';
COMMENT ON FUNCTION sponsorship.create_month_partition(regclass, date) IS
    'Creates (if missing) the monthly partition of event_impressions or ticket_analytics holding the given date, '
    'moving that month''s rows out of the DEFAULT partition; returns its name, whether it was created and the rows moved.';
COMMENT ON FUNCTION sponsorship.ensure_month_partition(regclass, date) IS
    'Creates (if missing) the monthly partition of a fact table that holds the given date; returns its name.';
COMMENT ON TABLE sponsorship.event_impressions_default IS 'Rows outside every monthly partition of event_impressions.';
COMMENT ON TABLE sponsorship.ticket_analytics_default IS 'Rows outside every monthly partition of ticket_analytics.';
COMMENT ON MATERIALIZED VIEW sponsorship.mv_event_quality_scores IS
    'Per event: eight quality components in [0,1] (engagement rate, conversion, recency, content, category popularity, '
    'volume, social proof, sentiment), final_quality_score in [0,1] and quality_tier (premium >= 0.8, high >= 0.6, '
    'medium >= 0.4, else low). Refresh with refresh_event_quality_scores().';
COMMENT ON FUNCTION sponsorship.refresh_materialized_view(text, boolean) IS
    'Refreshes sponsorship.<view> (concurrently when it is populated) and logs the run in mv_refresh_log; '
    'a failure is raised to the caller. Returns the row count.';
COMMENT ON MATERIALIZED VIEW sponsorship.mv_city_countries IS
    'Lower-cased (city, country) pairs seen in events; refreshed with the quality scores.';
COMMENT ON MATERIALIZED VIEW sponsorship.mv_tier_price_medians IS
    'Median price of active packages per event quality tier and currency; refreshed with the quality scores.';
COMMENT ON FUNCTION sponsorship.refresh_event_quality_scores() IS
    'Refreshes mv_event_quality_scores (and the market reference views built on it) concurrently, '
    'logging each run in mv_refresh_log; returns the number of scored events.';
COMMENT ON MATERIALIZED VIEW sponsorship.mv_sponsor_event_fit_scores IS
    'The 25 best-scored sponsors of each event and the 25 best-scored events of each sponsor (rejected pairs excluded).';
COMMENT ON VIEW sponsorship.event_quality_scores IS
    'mv_event_quality_scores restricted to the events the caller may read.';
COMMENT ON VIEW sponsorship.v_event_performance_summary IS
    'Per event: audience, quality, impressions, ticket-page views and tickets sold, packages and paid sponsorship '
    'revenue (per currency).';
COMMENT ON VIEW sponsorship.v_sponsorship_package_cards IS
    'Active packages as shown to sponsors: event, price, remaining inventory, cost per thousand expected reach, event quality.';
COMMENT ON FUNCTION sponsorship.sponsor_events_sponsored(uuid) IS
    'Public track record of a sponsor: the number of events it has sponsored (live or completed, paid deals).';
COMMENT ON FUNCTION sponsorship.sponsor_roi_record(uuid) IS
    'Public ROI record of a sponsor: evaluated activations and, from 3 of them on, the median reach delivered against '
    'expected and the share of those with an expectation that met or exceeded it (two decimals).';
COMMENT ON VIEW sponsorship.v_sponsor_marketplace IS
    'Sponsor listings with their profile (budget, categories, regions, objectives) and public track record: events '
    'sponsored and the ROI of evaluated activations (median reach delivered against expected, share that met it).';
COMMENT ON VIEW sponsorship.v_event_marketplace IS
    'Events that have not ended, with organizer, audience, quality, packages still available (cheapest first) and package units sold.';
COMMENT ON VIEW sponsorship.v_marketplace_analytics IS
    'One row of marketplace totals: parties, events, packages, orders by status, gross volume, fees and payouts per currency, matches.';


---------------------------------------------------------------------------------------
-- sql/80_roi_audit.sql
---------------------------------------------------------------------------------------

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


---------------------------------------------------------------------------------------
-- sql/85_operations.sql
---------------------------------------------------------------------------------------

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


---------------------------------------------------------------------------------------
-- sql/90_finalize.sql (idempotent: pins search_path and sets EXECUTE on every function)
---------------------------------------------------------------------------------------

-- Runs last. Pins the search_path of every function of the extension (pg_catalog first,
-- pg_temp last, pgvector's schema wherever pgvector lives), and replaces PUBLIC's default
-- EXECUTE with grants to the API roles. Functions that must not be callable by API users
-- (SECURITY DEFINER maintenance) are for service_role only.

DO $pin$
DECLARE
    v_vector_schema  text;
    v_path           text;
    f                record;
BEGIN
    SELECT n.nspname INTO v_vector_schema
      FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'vector';
    v_path := 'pg_catalog, sponsorship';
    IF v_vector_schema IS NOT NULL AND v_vector_schema NOT IN ('pg_catalog', 'sponsorship') THEN
        v_path := v_path || ', ' || quote_ident(v_vector_schema);
    END IF;
    v_path := v_path || ', pg_temp';

    FOR f IN
        SELECT p.oid::regprocedure AS sig, p.prokind, p.proname
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'sponsorship'::regnamespace AND p.prokind IN ('f', 'p')
    LOOP
        -- The one exception: calculate_platform_fee is Rust that resolves no name through the
        -- search_path (its only query is schema-qualified), and is called once per row over
        -- whole tables of orders, where a pinned setting would cost microseconds per row.
        IF f.proname <> 'calculate_platform_fee' THEN
            EXECUTE format('ALTER %s %s SET search_path = %s',
                           CASE f.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f.sig, v_path);
        END IF;
        EXECUTE format('REVOKE ALL ON %s %s FROM PUBLIC',
                       CASE f.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f.sig);
    END LOOP;
END
$pin$;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA sponsorship TO anon, authenticated, service_role;

REVOKE EXECUTE ON FUNCTION
    sponsorship.refresh_materialized_view(text, boolean),
    sponsorship.refresh_event_quality_scores(),
    sponsorship.ensure_month_partition(regclass, date),
    sponsorship.add_creator_as_owner(),
    sponsorship.touch_updated_at(),
    sponsorship.refresh_sponsor_event_fit_scores(),
    sponsorship.enqueue_recalc(uuid, uuid, text, int),
    sponsorship.update_sponsorship_matches(int),
    sponsorship.rescore_all_matches(int),
    sponsorship.set_scoring_weights(numeric, numeric, numeric, numeric, numeric, text),
    sponsorship.check_recalc_queue_health(),
    sponsorship.cleanup_recalc_queue(),
    sponsorship.fn_compute_match_matrix(int),
    sponsorship.match_matrix_arrays(int),
    sponsorship.worker_status(),
    sponsorship.match_kernel_benchmark(int),
    sponsorship.note_match_input_change(),
    sponsorship.fn_note_match_input_change(),
    sponsorship.fn_note_match_input_ddl(),
    sponsorship.prune_match_input_changes(interval),
    sponsorship.backfill_embeddings(int),
    sponsorship.fn_mark_objectives_embedding(),
    sponsorship.fn_mark_description_embedding(),
    sponsorship.queue_due_payouts(integer),
    sponsorship.fn_reverse_payouts_on_refund(),
    sponsorship.refresh_order_payout_status(uuid),
    sponsorship.process_payout_queue(integer),
    sponsorship.reconcile_payouts(interval),
    sponsorship.payout_lease(),
    sponsorship.fn_activation_lifecycle(),
    sponsorship.evaluate_completed_sponsorships(integer),
    sponsorship.roi_assess(jsonb),
    sponsorship.fn_audit_log_is_append_only(),
    sponsorship.fn_audit_payout_configuration(),
    sponsorship.fn_audit_payout_configuration_truncate(),
    sponsorship.fn_audit_match_status(),
    sponsorship.observe_platform_settings(),
    sponsorship.log_refresh_failure(text, float8, boolean, text, text),
    sponsorship.create_month_partition(regclass, date),
    sponsorship.create_next_month_partitions(integer),
    sponsorship.apply_partition_retention(integer, text),
    sponsorship.refresh_package_cards(),
    sponsorship.refresh_semantic_marketplace(),
    sponsorship.record_queue_health(bigint, interval, bigint),
    sponsorship.run_cleanup(integer),
    sponsorship.prune_cron_history(interval, integer),
    sponsorship.require_pg_cron(),
    sponsorship.schedule_jobs(),
    sponsorship.unschedule_jobs(),
    sponsorship.require_job_owner(),
    sponsorship.cron_job_status(),
    sponsorship.health()
  FROM anon, authenticated;

-- Fees are an organization's commercial terms: signed-in users (who pay them) may compute
-- them, anonymous visitors may not. Queueing a payout checks its caller itself.
REVOKE EXECUTE ON FUNCTION
    sponsorship.calculate_platform_fee(bigint, uuid),
    sponsorship.calculate_platform_fee(bigint, uuid, text),
    sponsorship.queue_sponsorship_payout(uuid, integer),
    sponsorship.evaluate_sponsorship_roi(uuid)
  FROM anon;
