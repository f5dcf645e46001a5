#!/usr/bin/env bash
# README command 1: set up the machine, build and install the release build, start a
# local cluster, create the extension, load the demo marketplace and show it working.
# Safe to re-run: the demo database is recreated each time.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

bash "$REPO_ROOT/scripts/setup.sh"
install_extension release
cluster_start demo sponsorship_demo

say "creating the extension"
recreate_extension

say "loading the demo marketplace (the recalculation worker pauses meanwhile)"
# The payout worker stays off: the demo drives payouts itself, with process_payout_queue().
psql -X -q -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET sponsorship.worker_enabled = off" \
     -c "ALTER SYSTEM SET sponsorship.payout_worker_enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
start=$(date +%s)
psql -X -q -v ON_ERROR_STOP=1 -f "$REPO_ROOT/demo/load_marketplace.sql"
say "loaded in $(( $(date +%s) - start ))s"

psql -X -q -v ON_ERROR_STOP=1 -f "$REPO_ROOT/demo/summary.sql"
say "computing embeddings inside Postgres: two sessions call backfill_embeddings() side by side"
psql -X -q -c "SELECT embedding, total, stale AS waiting_for_an_embedding FROM sponsorship.embedding_coverage()"
start=$(date +%s)
backfill='DO $$ BEGIN LOOP EXIT WHEN sponsorship.backfill_embeddings(64) = 0; END LOOP; END $$'
psql -X -q -v ON_ERROR_STOP=1 -c "$backfill" &
psql -X -q -v ON_ERROR_STOP=1 -c "$backfill"
wait
elapsed=$(( $(date +%s) - start ))
texts=$(psql -XtAc "SELECT sum(current) FROM sponsorship.embedding_coverage()")
say "embedded $texts texts in ${elapsed}s ($(( texts / (elapsed > 0 ? elapsed : 1) )) texts/s on two cores; long event descriptions cost more than short sentences)"
psql -X -q -v ON_ERROR_STOP=1 -f "$REPO_ROOT/demo/search.sql"
psql -X -q -v ON_ERROR_STOP=1 -f "$REPO_ROOT/demo/matching.sql"

say "payouts: a scripted fake Stripe server on 127.0.0.1 stands in for api.stripe.com"
demo_key=sk_test_demoPayouts0123456789
fake_stripe_start demo "$demo_key" 20
trap 'kill "$FAKE_STRIPE_PID" 2>/dev/null || true' EXIT
stripe_settings "$FAKE_STRIPE_URL" "$demo_key"
# The demo drives payouts with process_payout_queue(); retries come back after a second, and
# the client gives up on a request after 1.5 s (one scripted fault answers after 3 s).
psql -X -q -c "ALTER SYSTEM SET sponsorship.payout_retry_base_seconds = 1" \
     -c "ALTER SYSTEM SET sponsorship.payout_http_timeout_ms = 1500" -c "SELECT pg_reload_conf()" >/dev/null
python3 - "$FAKE_STRIPE_URL" <<'PY'
import json, sys, urllib.request
t = "/v1/transfers"
rules = [
    {"method": "POST", "path_prefix": t, "action": "status", "status": 503, "times": 2,
     "headers": {"Stripe-Should-Retry": "true"}},
    {"method": "POST", "path_prefix": t, "action": "status", "status": 429, "headers": {"Retry-After": "1"}},
    {"method": "POST", "path_prefix": t, "action": "drop_after_commit"},
    {"method": "POST", "path_prefix": t, "action": "timeout", "seconds": 3},
    {"method": "POST", "path_prefix": t, "action": "status", "status": 400, "code": "account_invalid",
     "param": "destination", "message": "The destination account is not connected to your platform."},
]
req = urllib.request.Request(sys.argv[1] + "/__control/script", data=json.dumps({"rules": rules}).encode(),
                             headers={"Content-Type": "application/json"})
urllib.request.urlopen(req).read()
PY
psql -X -q -v ON_ERROR_STOP=1 -f "$REPO_ROOT/demo/payouts.sql"
python3 - "$FAKE_STRIPE_URL" "$(psql -XtAc "SELECT count(*) FROM sponsorship.sponsorship_payouts WHERE stripe_transfer_id IS NOT NULL")" <<'PY'
import json, sys, urllib.request
stats = json.load(urllib.request.urlopen(sys.argv[1] + "/__control/stats"))
paid = int(sys.argv[2])
print(f"\nThe fake Stripe server saw {stats['requests']} requests and made {stats['transfers']} transfers and "
      f"{stats['reversals']} reversals for {paid} payouts with a transfer id; it replayed {stats['replays']} answers "
      f"to retries that carried the same Idempotency-Key.")
if stats["transfers"] != paid:
    sys.exit(f"transfers ({stats['transfers']}) and paid payouts ({paid}) differ")
PY

say "after the events: ROI of the completed activations, and the audit trail"
# The platform's default fee changes in postgresql.auto.conf and back: the changes are
# observed (no trigger can see a setting change) and logged with where they came from.
psql -X -q -c "ALTER SYSTEM SET sponsorship.platform_fee_bps = 450" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
psql -X -q -c "SELECT sponsorship.observe_platform_settings()" >/dev/null
psql -X -q -c "ALTER SYSTEM RESET sponsorship.platform_fee_bps" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
psql -X -q -c "SELECT sponsorship.observe_platform_settings()" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -f "$REPO_ROOT/demo/roi_audit.sql"

say "operations: partitions, refreshes, the pg_cron schedule and the health report"
psql -X -q -v ON_ERROR_STOP=1 -f "$REPO_ROOT/demo/operations.sql"

echo
say "the demo cluster is still running; explore it with:"
echo "    psql -h $PGHOST -p $PGPORT -U postgres sponsorship_demo"
echo "    (stop it: runuser -u postgres -- $PG_BIN/pg_ctl -D $CLUSTER_ROOT/demo/data stop)"
