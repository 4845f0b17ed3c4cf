#!/usr/bin/env bash
# postgres.sh - a throwaway PostgreSQL (Debian's) on loopback, all its state in one directory
# (from ../shared/tools/postgres/postgres.sh; the tests start it themselves through
# test/helpers/postgres.ts).
#
#   postgres.sh start DIR PORT   initdb (first time) and start on 127.0.0.1:PORT
#   postgres.sh stop DIR         fast shutdown
#
# PG_OPTS: more server settings for start (e.g. "-c shared_buffers=4GB", as the benchmarks
# size a production server).
#
# Superuser "tessera", trust authentication, socket in DIR: a test server, never a production
# one. initdb and postgres refuse to run as root, so as root they run as the system user
# "postgres" (Debian's postgresql package makes it) and DIR must be traversable by it.
set -euo pipefail
cmd=${1:-}; DIR=${2:-}
[ -n "$cmd" ] && [ -n "$DIR" ] || { echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2; }
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -n "$BIN" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 3; }
if [ "$(id -u)" = 0 ]; then as_pg() { runuser -u postgres -- "$@"; }; else as_pg() { "$@"; }; fi
case "$cmd" in
  start)
    PORT=${3:?port}
    if [ "$(id -u)" = 0 ]; then chmod 755 "$DIR"; chown postgres "$DIR"; fi
    if [ ! -s "$DIR/data/PG_VERSION" ]; then
      as_pg "$BIN/initdb" -D "$DIR/data" -A trust -U tessera >"$DIR/initdb.log" 2>&1
    fi
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
      -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off ${PG_OPTS:-}" start >/dev/null ;;
  stop)
    [ -s "$DIR/data/PG_VERSION" ] && as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
