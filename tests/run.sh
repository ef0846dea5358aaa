#!/usr/bin/env bash
# The whole test suite on a fresh Debian-like machine: installs what is missing (Debian
# packages, a virtualenv with Argus and its test extras), starts PostgreSQL and InfluxDB
# on loopback in a temporary directory, runs pytest, and stops the servers again.
#
#   bash tests/run.sh [pytest arguments...]
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
venv="${ARGUS_VENV:-$repo/.venv}"
work="$(mktemp -d -t argus-test-XXXXXX)"
export ARGUS_TEST_ARTIFACTS="${ARGUS_TEST_ARTIFACTS:-$repo/test-artifacts}"

log() { printf '[tests/run.sh] %s\n' "$*" >&2; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

install_debian_packages() {
  local missing=()
  [ -n "$(pg_bin)" ] || missing+=(postgresql)
  command -v influxd >/dev/null || missing+=(influxdb)
  command -v victoria-metrics >/dev/null || missing+=(victoria-metrics)
  [ ${#missing[@]} -eq 0 ] && return
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # Packages' own service start-up fails harmlessly without an init system; ours follow.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

install_python() {
  if [ ! -x "$venv/bin/python" ]; then
    log "creating virtualenv $venv"
    python3 -m venv "$venv"
  fi
  log "installing Argus and test dependencies"
  "$venv/bin/pip" install -q --disable-pip-version-check -e ".[test]" 2>&1 \
    | { grep -v "WARNING: Location" || true; }
}

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() {  # wait_for NAME COMMAND...: poll until COMMAND succeeds, up to 30 s
  local name="$1"; shift
  for _ in $(seq 1 150); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  log "$name did not start; its log follows"; cat "$work/$name.log" >&2 || true
  return 1
}

start_postgres() {
  local bin port
  bin="$(pg_bin)"; port="$(free_port)"
  # The server runs as `postgres` (initdb refuses root): it owns its directories and log.
  mkdir -p "$work/pg" "$work/pg-run"
  chmod 755 "$work"
  local as_pg=()
  if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres:postgres "$work/pg" "$work/pg-run"
    as_pg=(runuser -u postgres --)
  fi
  "${as_pg[@]}" "$bin/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 >"$work/postgres-initdb.log" 2>&1 \
    || { cat "$work/postgres-initdb.log" >&2; return 1; }
  "${as_pg[@]}" "$bin/pg_ctl" -D "$work/pg" -l "$work/pg-run/postgres.log" -w -o \
    "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$work/pg-run -c fsync=off" \
    start >/dev/null || { cat "$work/pg-run/postgres.log" >&2; return 1; }
  PG_STOP=("${as_pg[@]}" "$bin/pg_ctl" -D "$work/pg" -m fast stop)
  "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE argus_test" >/dev/null
  export ARGUS_TEST_POSTGRES_DSN="postgresql://postgres@127.0.0.1:$port/argus_test"
  log "PostgreSQL on 127.0.0.1:$port"
}

start_influxdb() {
  local port rpc
  port="$(free_port)"; rpc="$(free_port)"
  mkdir -p "$work/influx"
  cat >"$work/influx.conf" <<EOF
bind-address = "127.0.0.1:$rpc"
reporting-disabled = true
[meta]
  dir = "$work/influx/meta"
[data]
  dir = "$work/influx/data"
  wal-dir = "$work/influx/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$port"
  log-enabled = false
[monitor]
  store-enabled = false
EOF
  influxd run -config "$work/influx.conf" >"$work/influxdb.log" 2>&1 &
  INFLUX_PID=$!
  wait_for influxdb "$venv/bin/python" -c \
    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/ping', timeout=1)"
  export ARGUS_TEST_INFLUXDB_URL="http://127.0.0.1:$port"
  log "InfluxDB on 127.0.0.1:$port"
}

# VictoriaMetrics takes the InfluxDB store's writes (/api/v2/write). The contract tests
# write points from 2023 (default retention: one month) and replay batches, which it keeps
# as duplicate samples unless it deduplicates.
start_victoriametrics() {
  local port
  port="$(free_port)"
  victoria-metrics -storageDataPath "$work/victoria" -httpListenAddr "127.0.0.1:$port" \
    -search.latencyOffset=0s -retentionPeriod=100y -dedup.minScrapeInterval=1ms \
    >"$work/victoriametrics.log" 2>&1 &
  VICTORIA_PID=$!
  wait_for victoriametrics "$venv/bin/python" -c \
    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=1)"
  export ARGUS_TEST_VICTORIAMETRICS_URL="http://127.0.0.1:$port"
  log "VictoriaMetrics on 127.0.0.1:$port"
}

PG_STOP=()
INFLUX_PID=""
VICTORIA_PID=""
cleanup() {
  [ ${#PG_STOP[@]} -gt 0 ] && "${PG_STOP[@]}" >/dev/null 2>&1 || true
  [ -n "$INFLUX_PID" ] && kill "$INFLUX_PID" 2>/dev/null && wait "$INFLUX_PID" 2>/dev/null || true
  [ -n "$VICTORIA_PID" ] && kill "$VICTORIA_PID" 2>/dev/null && wait "$VICTORIA_PID" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

install_debian_packages
install_python
start_postgres
start_influxdb
start_victoriametrics

log "running pytest"
set +e
"$venv/bin/python" -m pytest -p no:cacheprovider "$@"
status=$?
set -e
exit $status
