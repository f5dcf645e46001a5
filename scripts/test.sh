#!/usr/bin/env bash
# README command 2: runs every test.
#   1. the embedding model's tests (the minilm crate), the pure unit tests and the in-database
#      #[pg_test] suites (cargo pgrx test, which starts its own throwaway cluster as the
#      postgres user);
#   2. the out-of-process tests in tests/ against a fresh cluster running the installed
#      extension with pgvector and pg_cron;
#   3. the load run (scripts/soak.sh: pgbench for SPONSORSHIP_SOAK_SECONDS, default 180).
# Sets the machine up first (skipping what is already there). Safe to re-run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

bash "$REPO_ROOT/scripts/setup.sh"

RESULTS="$(mktemp)"
trap 'rm -f "$RESULTS"' EXIT

PGRX_TEST_DATA="${SPONSORSHIP_PGRX_TEST_PGDATA:-/tmp/sponsorship-pgrx-test}"
stop_all_clusters
# cargo pgrx test installs its own build: never under a server that has the old one loaded.
rm -f "$("$PG_CONFIG" --pkglibdir)/sponsorship.so"
say "the embedding model's own tests (minilm crate, against sentence-transformers' vectors)"
(cd "$REPO_ROOT" && MINILM_MODEL_DIR="${SPONSORSHIP_MODEL_DIR:-/usr/local/share/sponsorship/all-MiniLM-L6-v2}" \
   cargo test -p minilm --release) 2>&1 | tee -a "$RESULTS"
say "the Stripe Connect client's own tests (stripe_connect crate)"
(cd "$REPO_ROOT" && cargo test -p stripe_connect) 2>&1 | tee -a "$RESULTS"
say "unit tests and #[pg_test] suites"
(cd "$REPO_ROOT" && cargo pgrx test pg15 --runas postgres --pgdata "$PGRX_TEST_DATA") 2>&1 | tee -a "$RESULTS"

# The pg_test build is now installed; put the real one back before the integration tests.
install_extension release
# A new cluster each run: roles and leftovers of earlier runs must not hide install bugs.
rm -rf "$CLUSTER_ROOT/test"
cluster_start test postgres
trap 'cluster_stop test; rm -f "$RESULTS"' EXIT
# Payout passes run in processes of their own and read the server's settings: the tests'
# fake Stripe servers accept this key (tests/src/lib.rs), and answer slowly on purpose.
stripe_settings https://api.stripe.com sk_test_sponsorshipTests0123456789
psql -X -q -c "ALTER SYSTEM SET sponsorship.payout_http_timeout_ms = 2000" -c "SELECT pg_reload_conf()" >/dev/null
say "the fake Stripe server's own test"
python3 "$REPO_ROOT/tests/fake_stripe/selftest.py" 2>&1 | tee -a "$RESULTS"
say "out-of-process tests against $PGHOST:$PGPORT"
(cd "$REPO_ROOT" && SPONSORSHIP_TEST_PGHOST="$PGHOST" SPONSORSHIP_TEST_PGPORT="$PGPORT" \
   cargo test -p sponsorship-integration-tests -- --test-threads=2) 2>&1 | tee -a "$RESULTS"

cluster_stop test
say "the load run: pgbench mixing reads, edits and queue processing beside the workers and pg_cron"
bash "$REPO_ROOT/scripts/soak.sh" 2>&1 | tee -a "$RESULTS"

# One closing line for every suite together.
sed 's/\x1b\[[0-9;]*m//g' "$RESULTS" | awk '/^test result:/ { for (i = 1; i <= NF; i++) {
    if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  END { printf "summary: %d passed, %d failed\n", p, f }'
