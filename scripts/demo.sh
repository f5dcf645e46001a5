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
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS sponsorship CASCADE;
CREATE EXTENSION sponsorship CASCADE;
SQL

say "loading the demo marketplace (the recalculation worker pauses meanwhile)"
psql -X -q -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET sponsorship.worker_enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
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

echo
say "the demo cluster is still running; explore it with:"
echo "    psql -h $PGHOST -p $PGPORT -U postgres sponsorship_demo"
echo "    (stop it: runuser -u postgres -- $PG_BIN/pg_ctl -D $CLUSTER_ROOT/demo/data stop)"
