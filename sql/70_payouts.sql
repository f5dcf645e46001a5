-- Payouts (SPEC §5): queueing an order's payout, automatic payouts on a schedule, transfer
-- reversals for refunded orders, and the ledger. Sending is Rust (src/api/payouts.rs):
-- claim, commit, the HTTP call to Stripe, record, each in its own transaction.

CREATE TABLE sponsorship.payout_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token       bigint NOT NULL UNIQUE,
    source      text NOT NULL CHECK (source IN ('worker', 'process_payout_queue', 'reconcile_payouts')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    claimed     integer NOT NULL DEFAULT 0 CHECK (claimed >= 0),
    completed   integer NOT NULL DEFAULT 0 CHECK (completed >= 0),
    retrying    integer NOT NULL DEFAULT 0 CHECK (retrying >= 0),
    dead        integer NOT NULL DEFAULT 0 CHECK (dead >= 0),
    error       text,
    detail      jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(detail) = 'array')
);
CREATE INDEX payout_runs_started_idx ON sponsorship.payout_runs (started_at);
COMMENT ON TABLE sponsorship.payout_runs IS
    'One row per payout pass (the payout worker, process_payout_queue(), reconcile_payouts()): what it claimed and '
    'how each payout ended. Service-only.';
ALTER TABLE sponsorship.payout_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY service_role_all ON sponsorship.payout_runs TO service_role USING (true) WITH CHECK (true);
REVOKE ALL ON sponsorship.payout_runs FROM anon, authenticated;
GRANT ALL ON sponsorship.payout_runs TO service_role;

-- An order's payout_status, from its payouts: reversed (refunded and reversed), paid (every
-- stage of its plan paid), partially_paid, failed (a stage dead-lettered), processing,
-- queued, or unpaid.
CREATE FUNCTION sponsorship.refresh_order_payout_status(p_order_id uuid) RETURNS text
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_status text;
BEGIN
    SELECT CASE
             WHEN count(*) FILTER (WHERE p.status = 'reversed') > 0
              AND count(*) FILTER (WHERE p.status = 'completed') = 0 THEN 'reversed'
             WHEN count(*) FILTER (WHERE p.status = 'completed') > 0
              AND count(*) FILTER (WHERE p.status = 'completed')
                  = (SELECT count(*) FROM sponsorship.payout_stages(o.amount_cents, COALESCE(o.application_fee_cents, 0),
                                                                    o.currency, o.milestone, o.status) s)
               THEN 'paid'
             WHEN count(*) FILTER (WHERE p.status = 'completed') > 0 THEN 'partially_paid'
             WHEN count(*) FILTER (WHERE p.status = 'failed') > 0 THEN 'failed'
             WHEN count(*) FILTER (WHERE p.status = 'processing') > 0 THEN 'processing'
             WHEN count(p.id) > 0 THEN 'queued'
             ELSE 'unpaid' END
      INTO v_status
      FROM sponsorship.sponsorship_orders o
      LEFT JOIN sponsorship.sponsorship_payouts p ON p.order_id = o.id
     WHERE o.id = p_order_id
     GROUP BY o.id, o.amount_cents, o.application_fee_cents, o.currency, o.milestone, o.status;
    UPDATE sponsorship.sponsorship_orders SET payout_status = v_status
     WHERE id = p_order_id AND payout_status IS DISTINCT FROM v_status;
    RETURN v_status;
END
$fn$;
COMMENT ON FUNCTION sponsorship.refresh_order_payout_status(uuid) IS
    'Sets an order''s payout_status from its payouts and returns it.';

-- The payout of an order's due stages. SECURITY DEFINER: the payout tables are service-only,
-- and an organization's admins may ask for their own orders' payouts (checked below).
CREATE FUNCTION sponsorship.queue_sponsorship_payout(p_order_id uuid, p_priority integer DEFAULT 0)
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
COMMENT ON FUNCTION sponsorship.queue_sponsorship_payout(uuid, integer) IS
    'Queues the payout of an order''s due stages (its milestone plan, or one stage on acceptance): only for an order '
    'paid for (recorded charge; accepted, live or completed), of an organization with a Stripe Connect account, at or '
    'above its minimum payout. Idempotent: a stage queued or paid before returns the same payout. Returns the payout '
    'of the last due stage.';

-- Organizations with auto_payout_enabled get their eligible orders queued on their schedule.
CREATE FUNCTION sponsorship.queue_due_payouts(p_limit integer DEFAULT 1000)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_org     record;
    v_order   record;
    v_n       integer := 0;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'p_limit must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR v_org IN
        SELECT c.org_id FROM sponsorship.payout_configurations c
         WHERE c.auto_payout_enabled AND c.stripe_connect_account_id IS NOT NULL
           AND (c.last_auto_payout_at IS NULL
                OR c.last_auto_payout_at <= now() - CASE c.payout_schedule WHEN 'daily' THEN interval '1 day'
                                                                           WHEN 'weekly' THEN interval '7 days'
                                                                           WHEN 'monthly' THEN interval '1 month'
                                                                           ELSE NULL END)
           AND c.payout_schedule <> 'manual'
         ORDER BY c.last_auto_payout_at NULLS FIRST
           FOR UPDATE OF c SKIP LOCKED
    LOOP
        FOR v_order IN
            SELECT o.id FROM sponsorship.sponsorship_orders o JOIN sponsorship.events e ON e.id = o.event_id
             WHERE e.org_id = v_org.org_id AND o.stripe_charge_id IS NOT NULL
               AND o.status IN ('accepted', 'live', 'completed')
               AND EXISTS (SELECT 1 FROM sponsorship.payout_stages(o.amount_cents, COALESCE(o.application_fee_cents, 0),
                                                                   o.currency, o.milestone, o.status) s
                            WHERE s.due AND NOT EXISTS (SELECT 1 FROM sponsorship.sponsorship_payouts p
                                                         WHERE p.order_id = o.id AND p.stage = s.stage))
             ORDER BY o.created_at, o.id
             LIMIT p_limit - v_n
        LOOP
            BEGIN
                PERFORM sponsorship.queue_sponsorship_payout(v_order.id);
                v_n := v_n + 1;
            EXCEPTION WHEN object_not_in_prerequisite_state THEN
                NULL;   -- below the minimum payout for now: it will be due again with the next stage
            END;
        END LOOP;
        UPDATE sponsorship.payout_configurations SET last_auto_payout_at = now() WHERE org_id = v_org.org_id;
        EXIT WHEN v_n >= p_limit;
    END LOOP;
    RETURN v_n;
END
$fn$;
COMMENT ON FUNCTION sponsorship.queue_due_payouts(integer) IS
    'For organizations with auto_payout_enabled whose payout_schedule (daily, weekly, monthly) is due, queues the '
    'payouts of their eligible orders (at most p_limit); returns how many. The payout worker and pg_cron call it.';

-- A refund after a payout takes the money back from the organizer: each paid stage gets a
-- transfer reversal, sent with its own idempotency key.
CREATE FUNCTION sponsorship.fn_reverse_payouts_on_refund() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    v_payout record;
BEGIN
    FOR v_payout IN
        SELECT p.id FROM sponsorship.sponsorship_payouts p
         WHERE p.order_id = NEW.id AND p.status = 'completed' AND p.stripe_transfer_id IS NOT NULL
    LOOP
        INSERT INTO sponsorship.payout_queue (payout_id, action, priority) VALUES (v_payout.id, 'reversal', 10)
        ON CONFLICT (payout_id, action) DO NOTHING;
    END LOOP;
    -- stages not sent yet are not sent at all
    UPDATE sponsorship.payout_queue q SET status = 'dead', last_error = 'order refunded before the payout was sent',
                                          processed_at = now()
      FROM sponsorship.sponsorship_payouts p
     WHERE q.payout_id = p.id AND p.order_id = NEW.id AND q.action = 'transfer' AND q.status IN ('pending', 'failed')
       AND NOT q.maybe_sent;
    UPDATE sponsorship.sponsorship_payouts p SET status = 'failed', failure_reason = 'order refunded before the payout was sent'
     WHERE p.order_id = NEW.id AND p.status = 'pending'
       AND NOT EXISTS (SELECT 1 FROM sponsorship.payout_queue q
                        WHERE q.payout_id = p.id AND q.action = 'transfer' AND q.maybe_sent);
    -- transfers in flight, or whose outcome is unknown, are resolved first; one that turns out
    -- done gets its reversal queued when it is recorded
    PERFORM sponsorship.refresh_order_payout_status(NEW.id);
    RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION sponsorship.fn_reverse_payouts_on_refund() IS
    'Trigger: an order refunded after its payout queues a transfer reversal per paid stage; unsent stages are cancelled.';
CREATE TRIGGER sponsorship_orders_reverse_payouts_on_refund
    AFTER UPDATE OF status ON sponsorship.sponsorship_orders
    FOR EACH ROW WHEN (NEW.status = 'refunded' AND OLD.status IS DISTINCT FROM 'refunded')
    EXECUTE FUNCTION sponsorship.fn_reverse_payouts_on_refund();

-- Payouts whose outcome is not known: sent (or being sent) by a process that has not
-- recorded the result within the lease. reconcile_payouts() resolves them.
CREATE VIEW sponsorship.v_unknown_payouts WITH (security_invoker = true) AS
SELECT q.payout_id, p.order_id, p.org_id, p.stage, q.action, p.amount_cents, p.currency, q.attempts,
       q.locked_at, now() - q.locked_at AS locked_for, p.idempotency_key
  FROM sponsorship.payout_queue q
  JOIN sponsorship.sponsorship_payouts p ON p.id = q.payout_id
 WHERE q.status = 'processing'
   AND q.locked_at < now() - sponsorship.payout_lease();
COMMENT ON VIEW sponsorship.v_unknown_payouts IS
    'Payouts claimed longer ago than sponsorship.payout_lease_seconds without a recorded result (the sender crashed '
    'or hung): their Stripe outcome is unknown until reconcile_payouts() resends them with the same idempotency key.';
GRANT SELECT ON sponsorship.v_unknown_payouts TO service_role;

-- The ledger: what each organization was paid, per currency.
CREATE VIEW sponsorship.v_payout_ledger WITH (security_invoker = true) AS
SELECT p.org_id, o.name AS organization, p.currency,
       count(*) AS payouts,
       sum(p.gross_cents)::bigint AS gross_cents,
       sum(p.fee_cents)::bigint AS fee_cents,
       sum(p.amount_cents)::bigint AS net_cents,
       COALESCE(sum(p.amount_cents) FILTER (WHERE p.status = 'completed'), 0)::bigint AS paid_cents,
       COALESCE(sum(p.amount_cents) FILTER (WHERE p.status IN ('pending', 'processing')), 0)::bigint AS in_flight_cents,
       COALESCE(sum(p.amount_cents) FILTER (WHERE p.status = 'failed'), 0)::bigint AS failed_cents,
       COALESCE(sum(p.amount_cents) FILTER (WHERE p.status = 'reversed'), 0)::bigint AS reversed_cents,
       max(p.completed_at) AS last_paid_at
  FROM sponsorship.sponsorship_payouts p
  JOIN sponsorship.organizations o ON o.id = p.org_id
 GROUP BY p.org_id, o.name, p.currency;
COMMENT ON VIEW sponsorship.v_payout_ledger IS
    'Per organization and currency: payouts, gross, platform fee, net, and how much of the net is paid, in flight, '
    'failed or reversed (minor units). Org admins see their own organization; the service role all.';
GRANT SELECT ON sponsorship.v_payout_ledger TO authenticated, service_role;
