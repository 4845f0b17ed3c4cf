#!/usr/bin/env bash
# Copied from the team tools (../shared/tools/glance-peer/stop.sh): CI runs on a clean clone where ../shared
# may not exist. Keep the two in step.
# Stop the glance-api started by start.sh (same DATA_DIR / env).
# Usage: stop.sh [DATA_DIR]     (env GLANCE_PEER_DIR, default ${TMPDIR:-/tmp}/glance-peer)
#   env GLANCE_PEER_PURGE=1  also delete DATA_DIR afterwards
set -euo pipefail
DIR="${1:-${GLANCE_PEER_DIR:-${TMPDIR:-/tmp}/glance-peer}}"
PIDFILE="$DIR/glance-api.pid"
if [ ! -f "$PIDFILE" ]; then echo "glance-peer: no pid file in $DIR (not running?)" >&2; exit 0; fi
PID="$(cat "$PIDFILE")"
if kill -0 "$PID" 2>/dev/null; then
  # start.sh ran glance-api under setsid, so PID is also its process-group id:
  # TERM the parent (it terminates its workers), then the group as a fallback.
  kill -TERM "$PID" 2>/dev/null || true
  for i in $(seq 1 40); do kill -0 "$PID" 2>/dev/null || break; sleep 0.25; done
  kill -TERM -- "-$PID" 2>/dev/null || true
  sleep 0.5
  kill -0 "$PID" 2>/dev/null && kill -KILL -- "-$PID" 2>/dev/null || true
  echo "glance-peer: stopped pid $PID" >&2
else
  echo "glance-peer: pid $PID not running" >&2
fi
rm -f "$PIDFILE"
if [ "${GLANCE_PEER_PURGE:-0}" = 1 ]; then rm -rf "$DIR"; echo "glance-peer: removed $DIR" >&2; fi
