#!/usr/bin/env bash
# The load run of issue 7 (part of `bash scripts/test.sh`; alone: `bash scripts/soak.sh`).
# pgbench mixes marketplace reads, profile edits and queue processing for
# SPONSORSHIP_SOAK_SECONDS (default 180) with SPONSORSHIP_SOAK_CLIENTS clients (default 6), on
# a cluster of its own where two recalculation workers, the payout worker (against the fake
# Stripe server) and a pg_cron job draining both queues run at the same time. Then, with the
# queues drained: zero failed transactions, every recalculation row processed exactly once, no
# stored match stale, one transfer per payout, no ERROR in the server log. Safe to re-run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

secs="${SPONSORSHIP_SOAK_SECONDS:-180}"
clients="${SPONSORSHIP_SOAK_CLIENTS:-6}"
key=sk_test_soakRun0123456789

cluster_stop soak
rm -rf "$CLUSTER_ROOT/soak"
cluster_start soak soak
cat >> "$CLUSTER_ROOT/soak/sponsorship.conf" <<CONF
sponsorship.worker_count = 2
sponsorship.worker_naptime_ms = 50
sponsorship.worker_batch_size = 5
sponsorship.payout_naptime_ms = 100
sponsorship.payout_retry_base_seconds = 0
log_lock_waits = on
CONF
as_postgres "$PG_BIN/pg_ctl" -D "$CLUSTER_ROOT/soak/data" -l "$CLUSTER_ROOT/soak/server.log" -m fast -w restart >/dev/null
fake_stripe_start soak "$key" 15
trap 'kill "$FAKE_STRIPE_PID" 2>/dev/null || true; cluster_stop soak' EXIT
stripe_settings "$FAKE_STRIPE_URL" "$key"

psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION pg_cron" -f "$REPO_ROOT/bench/soak_setup.sql" \
     -c "SELECT cron.schedule('soak-recalc', '* * * * *', 'SELECT sponsorship.update_sponsorship_matches(25)')" \
     -c "SELECT cron.schedule('soak-payouts', '* * * * *', 'SELECT sponsorship.process_payout_queue(15)')" >/dev/null
log_start="$(stat -c %s "$CLUSTER_ROOT/soak/server.log")"

say "pgbench: $clients clients for $secs s (reads 5 : edits 3 : queue processing 2), two recalculation workers, the payout worker and pg_cron running"
out="$(mktemp)"
set +e
"$PG_BIN/pgbench" -n -c "$clients" -j 2 -T "$secs" -P 30 \
  -f "$REPO_ROOT/bench/soak_read.sql@5" -f "$REPO_ROOT/bench/soak_edit.sql@3" -f "$REPO_ROOT/bench/soak_queue.sql@2" \
  soak 2>&1 | tee "$out"
rc="${PIPESTATUS[0]}"
set -e
[ "$rc" = 0 ] || { echo "soak: pgbench failed (exit $rc)" >&2; exit 1; }
failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")"
done_tx="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")"
tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out" | head -1)"
rm -f "$out"
[ "${failed:-x}" = 0 ] || { echo "soak: $failed failed transactions" >&2; exit 1; }

say "draining: every order queued once more, then the workers left alone"
psql -X -q -v ON_ERROR_STOP=1 -c "SELECT count(sponsorship.queue_sponsorship_payout(id)) FROM sponsorship.sponsorship_orders" >/dev/null
for i in $(seq 600); do
  pending="$(psql -XtAc "SELECT (SELECT count(*) FROM sponsorship.fit_recalc_queue WHERE processed_at IS NULL)
                              + (SELECT count(*) FROM sponsorship.sponsorship_payouts WHERE status <> 'completed')")"
  [ "$pending" = 0 ] && break
  sleep 0.2
done
[ "$pending" = 0 ] || { echo "soak: $pending items still pending" >&2; exit 1; }
sleep 1   # a cron run started at a minute boundary may be finishing

transfers="$(curl -s "$FAKE_STRIPE_URL/__control/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["transfers"])')"
psql -X -q -v ON_ERROR_STOP=1 -v transfers="$transfers" <<'SQL'
\pset footer off
SELECT (SELECT count(*) FROM sponsorship.fit_recalc_queue) AS recalc_rows,
       (SELECT count(*) FROM public.recalc_done) AS processings,
       (SELECT count(DISTINCT queue_id) FROM public.recalc_done) AS rows_processed,
       (SELECT string_agg(by_whom || ' ' || n, ', ' ORDER BY by_whom)
          FROM (SELECT by_whom, count(*) AS n FROM public.recalc_done GROUP BY 1) w) AS processed_by,
       (SELECT count(*) FROM sponsorship.sponsorship_matches) AS matches,
       (SELECT count(*) FROM sponsorship.sponsorship_matches m,
               LATERAL sponsorship.fn_compute_match_score(m.event_id, m.sponsor_id) p
         WHERE p.score <> m.score) AS stale_matches,
       (SELECT count(*) FROM sponsorship.sponsorship_payouts) AS payouts,
       :transfers AS transfers,
       (SELECT count(*) FROM cron.job_run_details WHERE status = 'succeeded') AS cron_runs_ok,
       (SELECT count(*) FROM cron.job_run_details WHERE status = 'failed') AS cron_runs_failed
\gset
\echo 'queue rows' :recalc_rows ', processings' :processings '(' :processed_by '); matches' :matches ', stale' :stale_matches '; payouts' :payouts ', transfers' :transfers '; cron runs' :cron_runs_ok 'ok,' :cron_runs_failed 'failed'
SELECT :processings = :recalc_rows AND :rows_processed = :recalc_rows AND :stale_matches = 0
       AND :payouts = 150 AND :transfers = :payouts AND :cron_runs_failed = 0 AS all_good
\gset
\if :all_good
\else
DO $$ BEGIN RAISE EXCEPTION 'soak: the outcome is wrong (see the figures above)'; END $$;
\endif
SQL
errors="$(tail -c +"$((log_start + 1))" "$CLUSTER_ROOT/soak/server.log" | grep -E 'ERROR:|FATAL:|PANIC:|deadlock detected' || true)"
[ -z "$errors" ] || { echo "soak: errors in the server log:"; echo "$errors"; exit 1; } >&2
echo "soak: $done_tx transactions in $secs s ($tps tps), $failed failed; nothing lost, nothing processed twice"
echo "test result: ok. 1 passed; 0 failed; soak"
