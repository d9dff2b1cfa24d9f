#!/usr/bin/env bash
# A throwaway PostgreSQL server for the storage tests, on 127.0.0.1 only.
#
#   export EPOPT_TEST_POSTGRES_URL="$(bash .ci/postgres.sh)"   # start; prints ONLY the URL
#   bash .ci/postgres.sh --stop                                # stop it and delete its files
#
# Start: installs Debian's `postgresql` package when no server binaries are found (needs
# root and the package registry), creates a cluster in a fresh temporary directory, starts
# it on a free loopback port (no fsync: the data is disposable), creates the role `epopt`
# with a random password and the database `epopt_test` owned by it, and prints
#   postgresql+psycopg://epopt:PASSWORD@127.0.0.1:PORT/epopt_test
# on stdout. Everything else goes to stderr. Run as root, the server runs as the
# `postgres` user; run as anyone else, it runs as that user.
#
# Stop: `--stop` stops the server started last (its directory is recorded in
# ${EPOPT_PG_STATE:-/tmp/epopt-ci-postgres.path}) and removes the directory. It is safe to
# run when nothing is running. By hand: pg_ctl -D <dir>/data stop -m fast; rm -rf <dir>.
set -euo pipefail

STATE_FILE="${EPOPT_PG_STATE:-/tmp/epopt-ci-postgres.path}"

log() { echo "postgres.sh: $*" >&2; }

as_owner() {
  # Run a command as the cluster owner: `postgres` when we are root, else ourselves.
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

find_bindir() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
    echo "$dir"
  fi
}

stop_server() {
  if [ ! -f "$STATE_FILE" ]; then
    log "nothing to stop (no $STATE_FILE)"
    return 0
  fi
  local dir
  dir="$(cat "$STATE_FILE")"
  local bindir
  bindir="$(find_bindir)"
  if [ -d "$dir/data" ] && [ -n "$bindir" ]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
  fi
  case "$dir" in
    */epopt-pg.*) rm -rf "$dir" ;;
    *) log "not removing unexpected directory $dir" ;;
  esac
  rm -f "$STATE_FILE"
  log "stopped"
}

if [ "${1:-}" = "--stop" ]; then
  stop_server
  exit 0
elif [ $# -gt 0 ]; then
  log "usage: bash .ci/postgres.sh [--stop]"
  exit 2
fi

BINDIR="$(find_bindir)"
if [ -z "$BINDIR" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "no PostgreSQL server binaries under /usr/lib/postgresql and not root: install 'postgresql'"
    exit 1
  fi
  log "installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y --no-install-recommends postgresql >&2
  BINDIR="$(find_bindir)"
  if [ -z "$BINDIR" ]; then
    log "postgresql installed but no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
    exit 1
  fi
fi

if [ -f "$STATE_FILE" ]; then
  log "a previous server is recorded in $STATE_FILE; stopping it first"
  stop_server
fi

WORKDIR="$(mktemp -d "${TMPDIR:-/tmp}/epopt-pg.XXXXXX")"
if [ "$(id -u)" -eq 0 ]; then
  chown postgres: "$WORKDIR"
fi
chmod 700 "$WORKDIR"
echo "$WORKDIR" >"$STATE_FILE"

cleanup_on_error() {
  log "failed; server log follows"
  cat "$WORKDIR/server.log" >&2 2>/dev/null || true
  stop_server
}
trap cleanup_on_error ERR

PASSWORD="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"

as_owner "$BINDIR/initdb" -D "$WORKDIR/data" -U postgres --auth-local=trust \
  --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$WORKDIR/initdb.log" 2>&1 \
  || { cat "$WORKDIR/initdb.log" >&2; false; }

as_owner "$BINDIR/pg_ctl" -D "$WORKDIR/data" -l "$WORKDIR/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $WORKDIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >&2

psql_admin() {
  as_owner "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORKDIR" -p "$PORT" -U postgres "$@"
}
psql_admin -d postgres -c "CREATE ROLE epopt LOGIN PASSWORD '$PASSWORD'" >&2
psql_admin -d postgres -c "CREATE DATABASE epopt_test OWNER epopt" >&2

trap - ERR
log "PostgreSQL $("$BINDIR/pg_ctl" --version | sed -E "s/.*\(PostgreSQL\) ([^ ]+).*/\1/") on 127.0.0.1:$PORT, files in $WORKDIR"
echo "postgresql+psycopg://epopt:${PASSWORD}@127.0.0.1:${PORT}/epopt_test"
