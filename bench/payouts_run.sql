-- `scripts/bench.sh payouts`, one run: queues the payouts of one group of paid orders and
-- sends them, timed end to end (queueing, claiming, Stripe, recording). :mode is `call`
-- (process_payout_queue() until nothing is ready) or `worker` (wait for the payout worker).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SELECT set_config('bench.grp', :'grp', false), set_config('bench.mode', :'mode', false),
       set_config('bench.t0', clock_timestamp()::text, false) \gset
SELECT count(sponsorship.queue_sponsorship_payout(id)) AS queued FROM bench.payout_orders WHERE grp = :'grp' \gset
SELECT set_config('bench.queued', :'queued', false) \gset
DO $$
DECLARE
    v_grp text := current_setting('bench.grp');
    v_queued int := current_setting('bench.queued')::int;
    v_done int;
    v_seconds numeric;
BEGIN
    IF current_setting('bench.mode') = 'call' THEN
        LOOP
            EXIT WHEN sponsorship.process_payout_queue(500) = 0;
        END LOOP;
    ELSE
        FOR i IN 1..6000 LOOP
            SELECT count(*) INTO v_done FROM sponsorship.sponsorship_payouts p JOIN bench.payout_orders o ON o.id = p.order_id
             WHERE o.grp = v_grp AND p.status = 'completed';
            EXIT WHEN v_done >= v_queued;
            PERFORM pg_sleep(0.01);
        END LOOP;
    END IF;
    v_seconds := extract(epoch FROM clock_timestamp() - current_setting('bench.t0')::timestamptz);
    SELECT count(*) INTO v_done FROM sponsorship.sponsorship_payouts p JOIN bench.payout_orders o ON o.id = p.order_id
     WHERE o.grp = v_grp AND p.status = 'completed' AND p.stripe_transfer_id LIKE 'tr\_%';
    IF v_done <> v_queued THEN
        RAISE EXCEPTION '%: % of % payouts completed', v_grp, v_done, v_queued;
    END IF;
    INSERT INTO bench.payout_results (measure, payouts, seconds, per_second)
    VALUES (v_grp, v_queued, round(v_seconds, 2), round(v_queued / v_seconds, 1));
END $$;
