#!/usr/bin/env bash
# Copied from the team tools (../shared/tools/swift/swift.sh): CI runs on a clean clone where ../shared
# may not exist. Keep the two in step.
# Single-node, single-replica OpenStack Swift (Debian 12: swift 2.30.x, Zed-era) on 127.0.0.1,
# no systemd, no Docker. Native Swift API with tempauth + the s3api middleware (S3 on the same port).
# Debian 12 packages (installed by 'start' when missing):
#   apt-get -o DPkg::Lock::Timeout=900 -y install --no-install-recommends \
#     swift swift-proxy swift-object swift-container swift-account memcached curl
#
# usage: swift.sh start|stop|status|env [DIR]
#   DIR   state directory (default: $SWIFT_PEER_DIR or ./.swift-peer). Everything lives there:
#         etc/ (server confs, *.builder, *.ring.gz), srv/d1 (the one "device"), run/*.pid, log/*.log
# env knobs (defaults):
#   SWIFT_PORT=8080            proxy: Swift API http://127.0.0.1:$SWIFT_PORT/v1/AUTH_test, tempauth at
#                              /auth/v1.0, S3 (s3api, path style) at http://127.0.0.1:$SWIFT_PORT
#   SWIFT_BACKEND_PORT=6200    object=$SWIFT_BACKEND_PORT, container=+1, account=+2, memcached=+10
#   SWIFT_WORKERS=0            0 = each server is one process (no fork); N = N forked workers each
#   SWIFT_PART_POWER=8         ring partition power (1 replica, 1 device)
#   SWIFT_NO_INSTALL=1         never run apt-get
# Users (tempauth, account AUTH_<acct>):  test:tester / testing (.admin)   admin:admin / admin (.reseller_admin)
#   S3 credentials = the same pair: access key "test:tester", secret "testing".
# 'start' is idempotent: a running set in DIR is left alone; a stopped one is restarted with its data.
#   Once DIR/etc exists, the ports written there win over the env knobs ('stop', then delete DIR to change).
# 'stop' ends the 5 processes by the PIDs in DIR/run/*.pid (data kept; delete DIR to purge).
# 'env' prints exports: ST_AUTH/ST_USER/ST_KEY (python-swiftclient), SWIFT_* and S3_* (as ceph-rgw.sh).
# Note: Swift always reads hash prefix/suffix + storage policies from /etc/swift/swift.conf (package default,
#   policy 0 only); rings and server confs come from DIR/etc (swift_dir).
set -euo pipefail
CMD=${1:-start}
D=${2:-${SWIFT_PEER_DIR:-./.swift-peer}}
PY=/usr/bin/python3        # not a pyenv/venv python: swift lives in Debian's dist-packages
SWIFT_PORT=${SWIFT_PORT:-8080}
SWIFT_BACKEND_PORT=${SWIFT_BACKEND_PORT:-6200}
SWIFT_WORKERS=${SWIFT_WORKERS:-0}
SWIFT_PART_POWER=${SWIFT_PART_POWER:-8}
ETC=$D/etc

log() { echo "[swift-peer $(date +%T)] $*" >&2; }
running() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ -n $st && $st != Z* ]]; }
alive() { [[ -f "$D/run/$1.pid" ]] && running "$(cat "$D/run/$1.pid")"; }
SERVERS=(memcached account container object proxy)

read_ports() {   # an existing DIR keeps the ports it was created with
  if [[ -f $ETC/proxy-server.conf ]]; then
    SWIFT_PORT=$(sed -n 's/^bind_port = //p' "$ETC/proxy-server.conf")
    SWIFT_BACKEND_PORT=$(sed -n 's/^bind_port = //p' "$ETC/object-server.conf")
  fi
  OBJ_PORT=$SWIFT_BACKEND_PORT
  CONT_PORT=$((SWIFT_BACKEND_PORT + 1))
  ACC_PORT=$((SWIFT_BACKEND_PORT + 2))
  MC_PORT=$((SWIFT_BACKEND_PORT + 10))
}

install_pkgs() {
  local p need=0 PKGS="swift swift-proxy swift-object swift-container swift-account memcached curl"
  for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need=1
  done
  [[ $need == 0 || ${SWIFT_NO_INSTALL:-0} == 1 ]] && return 0
  local SUDO=""; [[ $(id -u) == 0 ]] || SUDO=sudo
  log "installing $PKGS (apt)"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=900 -y install --no-install-recommends $PKGS >&2 || {
    $SUDO apt-get -o DPkg::Lock::Timeout=900 update >&2
    $SUDO apt-get -o DPkg::Lock::Timeout=900 -y install --no-install-recommends $PKGS >&2; }
}

backend_conf() {   # name port
  cat > "$ETC/$1-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $2
workers = $SWIFT_WORKERS
swift_dir = $ETC
devices = $D/srv
mount_check = false
log_name = $1-server
# logs: stderr (-v) -> DIR/log/$1.log; there is no /dev/log, so also keep syslog off the network
log_udp_host = 127.0.0.1
log_udp_port = 9
recon_cache_path = $D/cache

[pipeline:main]
pipeline = healthcheck $1-server

[filter:healthcheck]
use = egg:swift#healthcheck

[app:$1-server]
use = egg:swift#$1
EOF
}

write_confs() {
  mkdir -p "$ETC" "$D/srv/d1" "$D/run" "$D/log" "$D/cache"
  backend_conf object "$OBJ_PORT"
  backend_conf container "$CONT_PORT"
  backend_conf account "$ACC_PORT"
  cat > "$ETC/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $SWIFT_PORT
workers = $SWIFT_WORKERS
swift_dir = $ETC
log_name = proxy-server
log_udp_host = 127.0.0.1
log_udp_port = 9

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test_tester2 = testing2
user_test2_tester2 = testing2 .admin
token_life = 86400

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
# path-style only (no dns_compliant_bucket_names / storage_domain): S3 clients need forcePathStyle

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MC_PORT

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
allow_object_versioning = true
[filter:symlink]
use = egg:swift#symlink
EOF
}

build_rings() {   # one python process for the 3 rings (swift-ring-builder x9 would take ~4.5 s)
  rm -f "$ETC"/{account,container,object}.{builder,ring.gz}
  $PY - "$ETC" "$SWIFT_PART_POWER" "$ACC_PORT" "$CONT_PORT" "$OBJ_PORT" <<'PY_EOF'
import sys
from swift.common.ring import RingBuilder
etc, power = sys.argv[1], int(sys.argv[2])
for name, port in zip(('account', 'container', 'object'), map(int, sys.argv[3:6])):
    b = RingBuilder(power, 1, 1)   # part power, 1 replica, min_part_hours 1
    b.add_dev({'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port,
               'device': 'd1', 'weight': 100, 'meta': ''})
    b.rebalance()
    b.get_ring().save('%s/%s.ring.gz' % (etc, name))
    b.save('%s/%s.builder' % (etc, name))
PY_EOF
}

port_taken() { curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" 2>/dev/null; }

launch() {   # name cmd...   (own session: stop() can end it and any forked workers)
  local n=$1; shift
  setsid "$@" >>"$D/log/$n.log" 2>&1 </dev/null &
  echo $! > "$D/run/$n.pid"
}

wait_up() {
  local p ok
  for _ in $(seq 1 200); do
    ok=1
    for p in "$OBJ_PORT" "$CONT_PORT" "$ACC_PORT" "$SWIFT_PORT"; do
      [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$p/healthcheck") == 200 ]] || { ok=0; break; }
    done
    if [[ $ok == 1 ]]; then return 0; fi
    for n in "${SERVERS[@]}"; do
      alive "$n" || { log "$n exited; last lines of $D/log/$n.log:"; tail -20 "$D/log/$n.log" >&2; return 1; }
    done
    sleep 0.1
  done
  log "timed out; see $D/log"; return 1
}

start() {
  mkdir -p "$D"; D=$(cd "$D" && pwd); ETC=$D/etc
  install_pkgs
  read_ports
  local all=1 n
  for n in "${SERVERS[@]}"; do alive "$n" || all=0; done
  if [[ $all == 1 ]]; then log "already running in $D"; print_ready; return 0; fi
  stop_all quiet   # half-running: restart the lot
  if [[ ! -f $D/.initialized ]]; then
    for p in "$SWIFT_PORT" "$OBJ_PORT" "$CONT_PORT" "$ACC_PORT"; do
      if port_taken "$p"; then log "port $p is taken by another server: set SWIFT_PORT / SWIFT_BACKEND_PORT"; return 1; fi
    done
    write_confs
    build_rings
    touch "$D/.initialized"
  fi
  mkdir -p "$D/run" "$D/log" "$D/cache" "$D/srv/d1"
  local mcuser=(); [[ $(id -u) == 0 ]] && mcuser=(-u root)
  launch memcached /usr/bin/memcached "${mcuser[@]}" -l 127.0.0.1 -p "$MC_PORT" -U 0 -m 64
  launch account   $PY /usr/bin/swift-account-server   "$ETC/account-server.conf" -v
  launch container $PY /usr/bin/swift-container-server "$ETC/container-server.conf" -v
  launch object    $PY /usr/bin/swift-object-server    "$ETC/object-server.conf" -v
  launch proxy     $PY /usr/bin/swift-proxy-server     "$ETC/proxy-server.conf" -v
  if ! wait_up; then stop_all; return 1; fi
  print_ready
}

print_ready() {
  log "ready: Swift http://127.0.0.1:$SWIFT_PORT/auth/v1.0 (test:tester/testing), S3 http://127.0.0.1:$SWIFT_PORT (data $D)"
}

stop_all() {
  local n pid pids=()
  for n in proxy object container account memcached; do
    [[ -f $D/run/$n.pid ]] || continue
    pid=$(cat "$D/run/$n.pid")
    if running "$pid"; then kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); fi
  done
  for _ in $(seq 1 100); do
    local left=()
    for pid in "${pids[@]}"; do running "$pid" && left+=("$pid"); done
    pids=("${left[@]}")
    [[ ${#pids[@]} -eq 0 ]] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "$D"/run/*.pid
  [[ ${1:-} == quiet ]] || log "stopped (data kept in $D)"
}

case $CMD in
  start) start ;;
  stop) [[ -d $D ]] && { D=$(cd "$D" && pwd); stop_all; } || true ;;
  status)
    read_ports
    for n in "${SERVERS[@]}"; do alive "$n" && echo "$n running pid $(cat "$D/run/$n.pid")" || echo "$n stopped"; done ;;
  env)
    read_ports
    echo "export ST_AUTH=http://127.0.0.1:$SWIFT_PORT/auth/v1.0 ST_USER=test:tester ST_KEY=testing"
    echo "export SWIFT_AUTH_URL=http://127.0.0.1:$SWIFT_PORT/auth/v1.0 SWIFT_USER=test:tester SWIFT_KEY=testing SWIFT_STORAGE_URL=http://127.0.0.1:$SWIFT_PORT/v1/AUTH_test"
    echo "export S3_ENDPOINT=http://127.0.0.1:$SWIFT_PORT S3_KEY=test:tester S3_SECRET=testing S3_REGION=us-east-1" ;;
  *) echo "usage: $0 start|stop|status|env [DIR]" >&2; exit 2 ;;
esac
