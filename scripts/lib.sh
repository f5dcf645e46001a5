# Shared helpers of the README commands: build/install the extension and run local
# Postgres clusters owned by the `postgres` user. Source it; do not run it.

# cargo lives in ~/.cargo/bin under rustup; make sure a bare environment finds it.
[ -d "$HOME/.cargo/bin" ] && case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) export PATH="$HOME/.cargo/bin:$PATH" ;; esac

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_MAJOR="${PG_MAJOR:-15}"
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"
PG_CONFIG="${PG_BIN}/pg_config"
CLUSTER_ROOT="${SPONSORSHIP_CLUSTER_ROOT:-/tmp/sponsorship-clusters}"

say() { printf '\033[1;32m==>\033[0m %s\n' "$*" >&2; }

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

# Stops every cluster under CLUSTER_ROOT that is running: copying a new .so under a
# server that loaded the old one crashes it.
stop_all_clusters() {
  local d
  for d in "$CLUSTER_ROOT"/*/data; do
    [ -f "$d/postmaster.pid" ] || continue
    say "stopping cluster $(dirname "$d")"
    as_postgres "$PG_BIN/pg_ctl" -D "$d" -m fast -w stop >/dev/null 2>&1 || true
  done
}

# Builds and installs the extension (release by default) into the system Postgres.
install_extension() {
  local profile="${1:-release}"
  stop_all_clusters
  local libdir
  libdir="$("$PG_CONFIG" --pkglibdir)"
  # A server still holding the old library keeps its inode; unlinking first means the
  # copy never writes into a mapped file.
  rm -f "$libdir/sponsorship.so"
  say "building and installing sponsorship ($profile)"
  local flags=()
  [ "$profile" = release ] && flags+=(--release)
  (cd "$REPO_ROOT" && cargo pgrx install "${flags[@]}" --pg-config "$PG_CONFIG" >/dev/null)
  # Earlier versions' install scripts (cargo pgrx installs the current one and the upgrade
  # scripts sql/sponsorship--A--B.sql): CREATE EXTENSION ... VERSION 'A' then ALTER
  # EXTENSION ... UPDATE works, as on a server that ran version A.
  install -m 644 "$REPO_ROOT"/sql/archive/sponsorship--*.sql "$("$PG_CONFIG" --sharedir)/extension/"
}

port_is_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
  local p="${1:-55432}"
  while ! port_is_free "$p"; do p=$((p + 1)); done
  echo "$p"
}

# cluster_start NAME DBNAME: (re)starts the cluster NAME on a free port, creates DBNAME if
# missing, and exports PGHOST/PGPORT/PGUSER/PGDATABASE for psql.
cluster_start() {
  local name="$1" db="$2"
  local dir="$CLUSTER_ROOT/$name"
  mkdir -p "$CLUSTER_ROOT"
  chmod 755 "$CLUSTER_ROOT"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    chown postgres:postgres "$dir"
    as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  local port
  port="$(free_port "${SPONSORSHIP_PORT:-55432}")"
  cat > "$dir/sponsorship.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = 'sponsorship, pg_cron'
cron.database_name = '$db'
sponsorship.worker_database = '$db'
cron.use_background_workers = on
max_worker_processes = 16
log_min_messages = warning
# the fact tables' monthly partitions are UTC months; sessions default to UTC too, so that
# date_trunc('month', now()) in tests and demo names the same months on any machine
timezone = 'UTC'
CONF
  chown postgres:postgres "$dir/sponsorship.conf"
  if ! grep -q "include_if_exists = '$dir/sponsorship.conf'" "$dir/data/postgresql.conf"; then
    echo "include_if_exists = '$dir/sponsorship.conf'" >> "$dir/data/postgresql.conf"
  fi
  as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
  export PGHOST="$dir" PGPORT="$port" PGUSER=postgres PGDATABASE="$db"
  if ! "$PG_BIN/psql" -XtAc "SELECT 1 FROM pg_database WHERE datname = '$db'" postgres | grep -q 1; then
    "$PG_BIN/createdb" "$db"
  fi
  say "cluster '$name' running: psql -h $dir -p $port -U postgres $db"
}

# Recreates the extension in the current database with the cluster's workers paused, so the
# DROP does not deadlock with a pass in progress (switched off by a reload, a worker stops after
# the pass it is in). The workers' settings are reset afterwards.
recreate_extension() {
  psql -X -q -c "ALTER SYSTEM SET sponsorship.worker_enabled = off" \
       -c "ALTER SYSTEM SET sponsorship.payout_worker_enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
  sleep 0.5
  local i
  for i in $(seq 1 600); do
    [ "$(psql -XtAc "SELECT count(*) FROM pg_stat_activity
                      WHERE backend_type LIKE 'sponsorship%worker' AND xact_start IS NOT NULL")" = 0 ] && break
    sleep 0.1
  done
  psql -X -q -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" \
       -c "DROP EXTENSION IF EXISTS sponsorship CASCADE" -c "CREATE EXTENSION sponsorship CASCADE"
  psql -X -q -c "ALTER SYSTEM RESET sponsorship.worker_enabled" \
       -c "ALTER SYSTEM RESET sponsorship.payout_worker_enabled" -c "SELECT pg_reload_conf()" >/dev/null
}

cluster_stop() {
  local dir="$CLUSTER_ROOT/$1"
  [ -f "$dir/data/postmaster.pid" ] || return 0
  as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# fake_stripe_start NAME KEY [LATENCY_MS]: starts the scripted fake Stripe server of
# tests/fake_stripe on a free 127.0.0.1 port; sets FAKE_STRIPE_PID and FAKE_STRIPE_URL.
# The caller stops it (kill "$FAKE_STRIPE_PID"), e.g. in an EXIT trap.
fake_stripe_start() {
  local name="$1" key="$2" latency="${3:-0}" line="" i
  mkdir -p "$CLUSTER_ROOT"
  local out="$CLUSTER_ROOT/$name.fake-stripe.out"
  : >"$out"
  python3 "$REPO_ROOT/tests/fake_stripe/fake_stripe.py" --port 0 --key "$key" --latency-ms "$latency" \
    >"$out" 2>"$CLUSTER_ROOT/$name.fake-stripe.log" &
  FAKE_STRIPE_PID=$!
  for i in $(seq 100); do
    line="$(head -1 "$out")"
    [ -n "$line" ] && break
    kill -0 "$FAKE_STRIPE_PID" 2>/dev/null || break
    sleep 0.1
  done
  case "$line" in
    "listening on 127.0.0.1:"*) FAKE_STRIPE_URL="http://${line#listening on }" ;;
    *) echo "the fake Stripe server did not start (see $CLUSTER_ROOT/$name.fake-stripe.log)" >&2; return 1 ;;
  esac
  say "fake Stripe server (pid $FAKE_STRIPE_PID) at $FAKE_STRIPE_URL, ${latency} ms per request"
}

# stripe_settings URL KEY: points the running cluster's payout passes at a Stripe API. The key
# goes into a file only the postgres user can read (a setting's value would be logged on
# reload); the passes run in processes of their own and read the server's settings.
stripe_settings() {
  local keyfile="$PGHOST/stripe_secret_key"
  (umask 077; printf '%s\n' "$2" >"$keyfile")
  chown postgres:postgres "$keyfile"
  psql -X -q -c "ALTER SYSTEM SET sponsorship.stripe_api_base = '$1'" \
       -c "ALTER SYSTEM SET sponsorship.stripe_secret_key_file = '$keyfile'" -c "SELECT pg_reload_conf()" >/dev/null
}
