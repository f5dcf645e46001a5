#!/usr/bin/env bash
# Benchmarks. Usage: scripts/bench.sh [matching] [--sponsors N] [--events N] [--pairs N]
# Starts its own cluster (as the demo does), builds a synthetic marketplace and prints each
# figure as a ratio against a baseline measured in the same session.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

what="${1:-matching}"
sponsors=2000 events=20000 pairs=3000
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
psql -X -q -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "DROP EXTENSION IF EXISTS sponsorship CASCADE" \
     -c "DROP SCHEMA IF EXISTS bench CASCADE" -c "CREATE EXTENSION sponsorship CASCADE"
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
  *) echo "unknown benchmark '$what' (known: matching)" >&2; exit 2 ;;
esac
