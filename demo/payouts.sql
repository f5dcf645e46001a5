-- Money: the platform fee to the minor unit, and organizer payouts sent to a (fake) Stripe
-- exactly once, through the failures the fake server is scripted to produce.
\set ON_ERROR_STOP on
\pset footer off
\pset null '—'
SET client_min_messages = warning;

\echo
\echo '━━ The platform fee, in minor units (rate in basis points, half up, then floor, cap, never above the amount) ━━'
WITH o AS (
    SELECT org.name, c.platform_fee_bps, c.min_fee_cents, c.max_fee_cents, org.id
      FROM sponsorship.organizations org LEFT JOIN sponsorship.payout_configurations c ON c.org_id = org.id
     ORDER BY c.platform_fee_bps IS NULL, c.platform_fee_bps DESC, org.name LIMIT 1),
d AS (SELECT org.name, org.id FROM sponsorship.organizations org
        LEFT JOIN sponsorship.payout_configurations c ON c.org_id = org.id
       WHERE c.platform_fee_bps IS NULL ORDER BY org.name LIMIT 1),
cases(amount, currency) AS (VALUES (100000::bigint, 'USD'), (1010, 'USD'), (50, 'USD'), (500000, 'JPY'), (123455, 'KWD'))
SELECT left(x.name, 26) AS organization,
       COALESCE(x.bps::text || ' bps', 'default ' || current_setting('sponsorship.platform_fee_bps') || ' bps') AS rate,
       cases.amount AS gross_minor, cases.currency,
       sponsorship.calculate_platform_fee(cases.amount, x.id, cases.currency) AS fee_minor,
       cases.amount - sponsorship.calculate_platform_fee(cases.amount, x.id, cases.currency) AS net_minor
  FROM (SELECT name, id, platform_fee_bps AS bps FROM o UNION ALL SELECT name, id, NULL FROM d) x
 CROSS JOIN cases
 ORDER BY x.bps NULLS LAST, cases.currency DESC, cases.amount DESC;

\echo
\echo '━━ Bad input is refused with a SQLSTATE ━━'
CREATE TEMP TABLE demo_fee_errors (call text, sqlstate text, message text);
DO $$
DECLARE
    v_org uuid := (SELECT id FROM sponsorship.organizations ORDER BY name LIMIT 1);
    v_call text;
BEGIN
    FOREACH v_call IN ARRAY ARRAY[
        format('calculate_platform_fee(-1, %L)', v_org),
        format('calculate_platform_fee(NULL, %L)', v_org),
        format('calculate_platform_fee(100, %L, %L)', v_org, 'XYZ'),
        format('calculate_platform_fee(100, %L)', '00000000-0000-0000-0000-000000000000')]
    LOOP
        BEGIN
            EXECUTE 'SELECT sponsorship.' || v_call;
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO demo_fee_errors VALUES (regexp_replace(v_call, '[0-9a-f-]{36}', 'org', 'g'), SQLSTATE, SQLERRM);
        END;
    END LOOP;
END $$;
SELECT call, sqlstate, left(message, 80) AS message FROM demo_fee_errors;

\echo
\echo '━━ Queueing the payouts of every paid order ━━'
\echo 'Organizers with automatic payouts first (queue_due_payouts(), which the payout worker runs every minute):'
SELECT sponsorship.queue_due_payouts(100000) AS orders_queued_automatically;
\echo 'Then every other paid order, one queue_sponsorship_payout() call each:'
CREATE TEMP TABLE demo_queued (order_id uuid, outcome text);
DO $$
DECLARE
    v_order record;
BEGIN
    FOR v_order IN
        SELECT o.id, EXISTS (SELECT 1 FROM sponsorship.sponsorship_payouts p WHERE p.order_id = o.id) AS queued_before
          FROM sponsorship.sponsorship_orders o
         WHERE o.status IN ('accepted', 'live', 'completed') AND o.stripe_charge_id IS NOT NULL
         ORDER BY o.created_at, o.id
    LOOP
        BEGIN
            PERFORM sponsorship.queue_sponsorship_payout(v_order.id);
            INSERT INTO demo_queued VALUES (v_order.id, CASE WHEN v_order.queued_before
                THEN 'queued before (automatic payout): same payout returned' ELSE 'queued' END);
        EXCEPTION WHEN object_not_in_prerequisite_state THEN
            INSERT INTO demo_queued VALUES (v_order.id,
                CASE WHEN SQLERRM LIKE '%no Stripe Connect account%' THEN 'refused: organizer has no Stripe account'
                     WHEN SQLERRM LIKE '%minimum payout%' THEN 'refused: below the organizer''s minimum payout'
                     ELSE 'refused: ' || left(SQLERRM, 60) END);
        END;
    END LOOP;
END $$;
SELECT outcome, count(*) AS orders FROM demo_queued GROUP BY outcome ORDER BY count(*) DESC;
\echo 'Queueing the same order again returns the same payout, and makes no second one:'
SELECT (SELECT count(*) FROM sponsorship.sponsorship_payouts) AS payouts_before,
       count(sponsorship.queue_sponsorship_payout(order_id)) AS queued_again,
       (SELECT count(*) FROM sponsorship.sponsorship_payouts) AS payouts_after
  FROM (SELECT order_id FROM demo_queued WHERE outcome LIKE 'queued%' LIMIT 50) q;

\echo
\echo '━━ Sending them: process_payout_queue(500) until the queue is empty ━━'
\echo '(the fake Stripe server answers 20 ms late, and is scripted to fail: two 503s, a 429 with Retry-After,'
\echo ' a request it commits but whose answer it drops, one it answers only after the client gave up, and a 400)'
SELECT set_config('demo.t0', clock_timestamp()::text, false) \gset
DO $$
DECLARE
    v_n int;
BEGIN
    FOR i IN 1..600 LOOP
        v_n := sponsorship.process_payout_queue(500);
        -- retries wait (with jitter) for their turn: wait for them rather than stop
        EXIT WHEN v_n = 0 AND NOT EXISTS (SELECT 1 FROM sponsorship.payout_queue
                                           WHERE status IN ('pending', 'failed', 'processing'));
        IF v_n = 0 THEN
            PERFORM pg_sleep(0.2);
        END IF;
    END LOOP;
END $$;
SELECT count(*) FILTER (WHERE status = 'completed') AS completed, count(*) FILTER (WHERE status = 'dead') AS dead_letters,
       count(*) FILTER (WHERE attempts > 1) AS needed_retries, max(attempts) AS most_attempts,
       round(extract(epoch FROM clock_timestamp() - current_setting('demo.t0')::timestamptz)::numeric, 1) AS seconds,
       round(count(*) / extract(epoch FROM clock_timestamp() - current_setting('demo.t0')::timestamptz)::numeric, 0)
         AS payouts_per_second
  FROM sponsorship.payout_queue;
\echo 'Passes (payout_runs):'
SELECT source, count(*) AS passes, sum(claimed) AS claimed, sum(completed) AS completed, sum(retrying) AS retried,
       sum(dead) AS dead FROM sponsorship.payout_runs GROUP BY source;
\echo 'The payouts that did not go straight through, and why:'
SELECT left(o.name, 24) AS organization, p.stage, q.attempts, q.status AS queue_status, p.status AS payout_status,
       p.stripe_transfer_id IS NOT NULL AS has_transfer,
       left(COALESCE(q.last_error, p.failure_reason, (SELECT d->>'error' FROM sponsorship.payout_runs r,
            jsonb_array_elements(r.detail) d WHERE d->>'payout_id' = p.id::text AND d ? 'error' LIMIT 1)), 70) AS what_happened
  FROM sponsorship.payout_queue q JOIN sponsorship.sponsorship_payouts p ON p.id = q.payout_id
  JOIN sponsorship.organizations o ON o.id = p.org_id
 WHERE q.attempts > 1 OR q.status = 'dead'
 ORDER BY q.status, q.attempts DESC LIMIT 8;

\echo
\echo '━━ A refund after the payout sends a transfer reversal ━━'
SELECT set_config('demo.refund', (SELECT p.order_id::text FROM sponsorship.sponsorship_payouts p
                                   WHERE p.status = 'completed' ORDER BY p.completed_at, p.id LIMIT 1), false) \gset
UPDATE sponsorship.sponsorship_orders SET status = 'refunded' WHERE id = current_setting('demo.refund')::uuid;
SELECT sponsorship.process_payout_queue(10) AS reversals_sent;
SELECT p.stage, p.amount_cents AS net_minor, p.currency, p.status, p.stripe_transfer_id, p.stripe_reversal_id,
       o.payout_status AS order_payout_status
  FROM sponsorship.sponsorship_payouts p JOIN sponsorship.sponsorship_orders o ON o.id = p.order_id
 WHERE p.order_id = current_setting('demo.refund')::uuid;

\echo
\echo '━━ The ledger (v_payout_ledger), largest organizers, in major units ━━'
SELECT left(organization, 28) AS organization, l.currency, payouts,
       to_char(gross_cents::numeric / 10 ^ e.x, e.f) AS gross,
       to_char(fee_cents::numeric / 10 ^ e.x, e.f) AS platform_fee,
       to_char(net_cents::numeric / 10 ^ e.x, e.f) AS net,
       to_char(paid_cents::numeric / 10 ^ e.x, e.f) AS paid,
       to_char(reversed_cents::numeric / 10 ^ e.x, e.f) AS reversed
  FROM sponsorship.v_payout_ledger l
 CROSS JOIN LATERAL (SELECT x, 'FM999,999,990' || CASE WHEN x > 0 THEN '.' || repeat('0', x) ELSE '' END AS f
                       FROM sponsorship.currency_exponent(l.currency) x) e
 ORDER BY gross_cents / 10 ^ e.x DESC LIMIT 10;
SELECT l.currency, sum(payouts) AS payouts, sum(gross_cents) AS gross_minor, sum(fee_cents) AS fee_minor,
       sum(net_cents) AS net_minor, sum(gross_cents) = sum(fee_cents) + sum(net_cents) AS gross_is_fee_plus_net
  FROM sponsorship.v_payout_ledger l GROUP BY l.currency ORDER BY l.currency;
