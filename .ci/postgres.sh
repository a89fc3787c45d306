#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for the test-suite.
#   source .ci/postgres.sh start   -> exports SHOPKEEPER_TEST_POSTGRES_URL, PG_TMP, PG_PID
#   .ci/postgres.sh stop            -> stops the cluster by its pid, removes the directory
# PostgreSQL refuses to run as root, so the cluster runs as the `postgres` user.
set -euo pipefail

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && echo "$d"; done | sort -V | tail -1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
  local bin port run
  bin=$(pg_bin)
  if [ -z "$bin" ]; then
    echo "postgres.sh: no PostgreSQL binaries under /usr/lib/postgresql" >&2
    return 1
  fi
  PG_TMP=$(mktemp -d /tmp/shopkeeper-pg.XXXXXX)
  port=$(free_port)
  run=()
  if [ "$(id -u)" = "0" ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$PG_TMP"
    run=(runuser -u postgres --)
  fi
  "${run[@]}" "$bin/initdb" -D "$PG_TMP/data" -U postgres --auth=trust -E UTF8 >"$PG_TMP/initdb.log" 2>&1
  "${run[@]}" "$bin/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w \
    -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  PG_PID=$(head -1 "$PG_TMP/data/postmaster.pid")
  "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE shopkeeper_test" >/dev/null
  export PG_TMP PG_PID PG_PORT=$port
  export SHOPKEEPER_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/shopkeeper_test"
  echo "postgres.sh: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on port $port (pid $PG_PID)" >&2
}

stop() {
  if [ -n "${PG_PID:-}" ]; then
    kill -INT "$PG_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  [ -n "${PG_TMP:-}" ] && rm -rf "$PG_TMP"
  return 0
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: source .ci/postgres.sh start | .ci/postgres.sh stop" >&2; return 2 2>/dev/null || exit 2 ;;
esac
