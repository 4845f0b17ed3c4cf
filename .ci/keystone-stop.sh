#!/usr/bin/env bash
# Copied from the team tools (../shared/tools/keystone/stop.sh): CI runs on a clean clone where ../shared
# may not exist. Keep the two in step.
# usage: stop.sh [DIR]   stops the uwsgi master started by start.sh for DIR (by its pid file); data is kept.
# Remove DIR to start from scratch.
set -euo pipefail
D=${1:-./.keystone-peer}
[[ -f "$D/uwsgi.pid" ]] || { echo "keystone-peer: not running (no $D/uwsgi.pid)" >&2; exit 0; }
PID=$(cat "$D/uwsgi.pid")
# alive = exists and not a zombie (PID 1 of a container may reap late)
running() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ -n $st && $st != Z* ]]; }
if running "$PID"; then
  kill -TERM "$PID"   # --die-on-term: master stops its workers and exits
  for _ in $(seq 1 50); do running "$PID" || break; sleep 0.1; done
  if running "$PID"; then kill -KILL "$PID"; fi
fi
rm -f "$D/uwsgi.pid"
echo "keystone-peer: stopped" >&2
