#!/usr/bin/env bash
# Benchmarks. Usage: scripts/bench.sh matching|embed|search|fee|payouts [--sponsors N] [--events N] [--pairs N]
# (search: --events defaults to 100000)
# Starts its own cluster (as the demo does), builds a synthetic marketplace and prints each
# figure as a ratio against a baseline measured in the same session.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

what="${1:-matching}"
sponsors=2000 events=20000 pairs=3000
[ "$what" = search ] && events=100000
shift || true
while [ $# -gt 0 ]; do
  case "$1" in
    --sponsors) sponsors="$2"; shift 2 ;;
    --events) events="$2"; shift 2 ;;
    --pairs) pairs="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

bash "$REPO_ROOT/scripts/setup.sh"
install_extension release
cluster_start bench bench
psql -X -q -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "DROP SCHEMA IF EXISTS bench CASCADE"
recreate_extension
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -m), $(date -u +%F)"
case "$what" in
  matching)
    say "building a synthetic marketplace: $sponsors sponsors x $events events (384-dim embeddings)"
    psql -X -q -v ON_ERROR_STOP=1 -v sponsors="$sponsors" -v events="$events" -f "$REPO_ROOT/bench/marketplace.sql"
    psql -X -q -v ON_ERROR_STOP=1 -f "$REPO_ROOT/bench/plpgsql_match.sql"
    psql -X -q -v ON_ERROR_STOP=1 -v pairs="$pairs" -f "$REPO_ROOT/bench/matching.sql"
    psql -X -q -v ON_ERROR_STOP=1 -v workers=1 -f "$REPO_ROOT/bench/drain.sql"
    say "restarting with two recalculation workers"
    psql -X -q -c "ALTER SYSTEM SET sponsorship.worker_count = 2"
    as_postgres "$PG_BIN/pg_ctl" -D "$CLUSTER_ROOT/bench/data" -l "$CLUSTER_ROOT/bench/server.log" -m fast -w restart >/dev/null
    psql -X -q -v ON_ERROR_STOP=1 -v workers=2 -f "$REPO_ROOT/bench/drain.sql"
    psql -X -q -c "ALTER SYSTEM RESET sponsorship.worker_count"
    echo
    echo '━━ Matching benchmark ━━'
    psql -X -c "SELECT measure, value, unit, baseline, (ratio || 'x') AS ratio, target FROM bench.results"
    ;;
  embed)
    venv="${SPONSORSHIP_ST_VENV:-/opt/sponsorship-st}"
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import sentence_transformers" 2>/dev/null; then
      say "installing sentence-transformers (the reference; CPU torch, about 6 GB) into $venv"
      python3 -m venv "$venv"
      "$venv/bin/pip" install -q sentence-transformers
    fi
    model_dir="$(psql -XtAc "SHOW sponsorship.model_path" 2>/dev/null || true)"
    [ -n "$model_dir" ] || model_dir=/usr/local/share/sponsorship/all-MiniLM-L6-v2
    say "sentence-transformers, one thread, on bench/sentences.txt"
    py="$("$venv/bin/python" "$REPO_ROOT/bench/embed_reference.py" "$model_dir" "$REPO_ROOT/bench/sentences.txt" 5 16)"
    echo "   $py"
    py_one="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["one_at_a_time_per_s"])' "$py")"
    py_batched="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["batched_per_s"])' "$py")"
    say "the extension, one backend, on the same sentences"
    psql -X -q -v ON_ERROR_STOP=1 -v sentences="$REPO_ROOT/bench/sentences.txt" -v passes=5 \
         -v py_one="$py_one" -v py_batched="$py_batched" -f "$REPO_ROOT/bench/embed.sql"
    ;;
  search)
    say "text search over $events events (embeds 5,000 texts first: a minute or two)"
    psql -X -q -c "ALTER SYSTEM SET sponsorship.worker_enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
    psql -X -q -v ON_ERROR_STOP=1 -v events="$events" -v queries="$REPO_ROOT/bench/queries.txt" \
         -f "$REPO_ROOT/bench/search.sql"
    psql -X -q -c "ALTER SYSTEM RESET sponsorship.worker_enabled" -c "SELECT pg_reload_conf()" >/dev/null
    ;;
  fee)
    say "calculate_platform_fee over ${rows:-1000000} rows"
    psql -X -q -v ON_ERROR_STOP=1 -v rows="${rows:-1000000}" -f "$REPO_ROOT/bench/fee.sql"
    ;;
  payouts)
    n="${payouts:-2000}"
    fake_stripe_start bench sk_test_benchPayouts0123456789 20
    trap 'kill "$FAKE_STRIPE_PID" 2>/dev/null || true' EXIT
    stripe_settings "$FAKE_STRIPE_URL" sk_test_benchPayouts0123456789
    reconf() { psql -X -q "${@/#/-c}" -c "SELECT pg_reload_conf()" >/dev/null; sleep 1; }
    reconf "ALTER SYSTEM SET sponsorship.payout_worker_enabled = off" "ALTER SYSTEM SET sponsorship.payout_concurrency = 1"
    say "paid orders: $((n / 10)) for the sequential baseline, $n for each concurrent run"
    psql -X -q -v ON_ERROR_STOP=1 -v payouts="$n" -v sequential="$((n / 10))" -f "$REPO_ROOT/bench/payouts_setup.sql"
    say "baseline: one request at a time (payout_concurrency = 1), process_payout_queue(500) until done"
    psql -X -q -v ON_ERROR_STOP=1 -v grp=sequential -v mode=call -f "$REPO_ROOT/bench/payouts_run.sql"
    reconf "ALTER SYSTEM RESET sponsorship.payout_concurrency"
    say "process_payout_queue(500) until done, $(psql -XtAc 'SHOW sponsorship.payout_concurrency') requests in flight"
    psql -X -q -v ON_ERROR_STOP=1 -v grp=concurrent -v mode=call -f "$REPO_ROOT/bench/payouts_run.sql"
    reconf "ALTER SYSTEM SET sponsorship.payout_worker_enabled = on" "ALTER SYSTEM SET sponsorship.payout_naptime_ms = 100"
    say "the payout worker (batches of $(psql -XtAc 'SHOW sponsorship.payout_batch_size'))"
    psql -X -q -v ON_ERROR_STOP=1 -v grp=worker -v mode=worker -f "$REPO_ROOT/bench/payouts_run.sql"
    reconf "ALTER SYSTEM RESET sponsorship.payout_worker_enabled" "ALTER SYSTEM RESET sponsorship.payout_naptime_ms" \
           "ALTER SYSTEM RESET sponsorship.stripe_api_base" "ALTER SYSTEM RESET sponsorship.stripe_secret_key_file"
    transfers="$(curl -s "$FAKE_STRIPE_URL/__control/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["transfers"])')"
    echo
    echo '━━ Payouts end to end against the fake Stripe server (20 ms per request) ━━'
    psql -X -q -c "UPDATE bench.payout_results r SET baseline = b.per_second, ratio = round(r.per_second / b.per_second, 1),
                          target = '>= 100 payouts/s'
                     FROM bench.payout_results b WHERE b.measure = 'sequential' AND r.measure <> 'sequential'" \
         -c "SELECT measure, payouts, seconds, per_second, baseline AS sequential_per_second, ratio || 'x' AS ratio, target
               FROM bench.payout_results ORDER BY payouts, measure"
    total="$(psql -XtAc "SELECT sum(payouts) FROM bench.payout_results")"
    echo "transfers the fake server made: $transfers, payouts queued: $total"
    [ "$transfers" = "$total" ] || { echo "payouts and transfers differ" >&2; exit 1; }
    ;;
  *) echo "unknown benchmark '$what' (known: matching, embed, search, fee, payouts)" >&2; exit 2 ;;
esac
