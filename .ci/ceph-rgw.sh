#!/usr/bin/env bash
# Copied from the team tools (../shared/tools/ceph-rgw/ceph-rgw.sh): CI runs on a clean clone
# where ../shared may not exist. Keep the two in step.
# Single-node Ceph (1 mon, 1 OSD, optional mgr) + radosgw (S3) on loopback, no systemd, no Docker.
# Fresh cluster ready in ~2 s (memstore) / ~6 s (bluestore) on 2 cores.
# Debian 12 packages: apt-get -o DPkg::Lock::Timeout=900 -y install --no-install-recommends \
#   ceph-mon ceph-osd ceph-mgr radosgw ceph-common
#
# usage: ceph-rgw.sh start|stop|status|env [DIR]
#   DIR        state directory (default: ./.ceph-rgw); everything (conf, keys, data, logs, pids) lives there
# env knobs (defaults):
#   RGW_PORT=7480          S3 endpoint http://127.0.0.1:$RGW_PORT
#   MON_PORT=3300          mon (msgr v2 only), loopback
#   OSD_STORE=memstore     memstore (RAM, fastest) | bluestore (sparse file DIR/osd-block)
#   OSD_BYTES=8G           memstore capacity / bluestore block file size
#   WITH_MGR=0             1 = also start ceph-mgr (~300 MB RSS, slow to stop); RGW does not need it
#                          (without it 'ceph -s' shows HEALTH_WARN no active mgr and no PG stats)
#   S3_ACCESS_KEY=TESTKEY S3_SECRET_KEY=TESTSECRET   credentials of the created S3 user "test"
# 'start' is idempotent: a running cluster in DIR is left alone; a stopped bluestore one is restarted with its
#   data; a stopped memstore one is rebuilt empty. Once DIR/ceph.conf exists, its ports/store win over the env knobs.
# 'stop' kills the daemons by the PIDs in DIR/run/*.pid. 'env' prints S3_ENDPOINT/S3_KEY/S3_SECRET exports.
set -euo pipefail
CMD=${1:-start}
D=${2:-./.ceph-rgw}
mkdir -p "$D"
D=$(cd "$D" && pwd)
RGW_PORT=${RGW_PORT:-7480}
MON_PORT=${MON_PORT:-3300}
OSD_STORE=${OSD_STORE:-memstore}
OSD_BYTES=${OSD_BYTES:-8G}
WITH_MGR=${WITH_MGR:-0}
S3_ACCESS_KEY=${S3_ACCESS_KEY:-TESTKEY}
S3_SECRET_KEY=${S3_SECRET_KEY:-TESTSECRET}
CONF=$D/ceph.conf
C=(ceph -c "$CONF" --connect-timeout 20)
if [[ -f "$CONF" ]]; then   # an existing cluster keeps the settings it was created with
  RGW_PORT=$(sed -n 's/^rgw frontends = beast endpoint=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$CONF")
  OSD_STORE=$(sed -n 's/^osd objectstore = //p' "$CONF")
  MON_PORT=$(sed -n 's/^mon host = v2:127\.0\.0\.1:\([0-9]*\)$/\1/p' "$CONF")
fi

bytes() { numfmt --from=iec "$1"; }
# running = pid file + process exists and is not a zombie (PID 1 of a container may reap late)
running() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ -n $st && $st != Z* ]]; }
alive() { [[ -f "$D/run/$1.pid" ]] && running "$(cat "$D/run/$1.pid")"; }
log() { echo "[ceph-rgw $(date +%T)] $*" >&2; }

write_conf() {
  local fsid=$1
  cat > "$CONF" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = a
public addr = 127.0.0.1
public network = 127.0.0.0/8
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $D/keyring
run dir = $D/run
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
log to stderr = false
err to stderr = true
mon cluster log file = $D/log/cluster.log
crash dir = $D/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
auth allow insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 2
mon data avail crit = 1
osd objectstore = $OSD_STORE
[mon]
mon data = $D/mon/\$name
# commit map changes every 50 ms instead of every 1 s: pool creation at start 7x faster
paxos propose interval = 0.05
paxos min wait = 0.01
[mgr]
mgr data = $D/mgr/\$name
[osd]
osd data = $D/osd
osd memory target = 1073741824
memstore device bytes = $(bytes "$OSD_BYTES")
bluestore block path = $D/osd-block
bluestore block create = true
bluestore block size = $(bytes "$OSD_BYTES")
bluestore fsck on mount = false
osd max object size = 134217728
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw data = $D/rgw
rgw dns name = localhost
rgw enable usage log = false
rgw enable ops log = false
rgw thread pool size = 64
EOF
}

start() {
  mkdir -p "$D"/{run,log,crash,mon,mgr/mgr.x,osd,rgw}
  trap 'log "start failed: stopping what was started (logs in $D/log)"; stop' ERR
  # a memstore OSD that is gone took all the data with it: rebuild rather than restart
  if [[ -f "$D/.initialized" && $OSD_STORE == memstore ]] && ! alive osd.0; then stop; fi
  if [[ ! -f "$D/.initialized" ]]; then
    rm -rf "$D"/mon/* "$D"/osd/* "$D/osd-block" "$D/keyring" "$D/monmap"
    local fsid; fsid=$(cat /proc/sys/kernel/random/uuid)
    write_conf "$fsid"
    log "creating keys + monmap (fsid $fsid)"
    ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool "$D/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
    ceph-authtool "$D/keyring" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *' >/dev/null
    ceph-authtool "$D/keyring" --gen-key -n mgr.x --cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *' >/dev/null
    ceph-authtool "$D/keyring" --gen-key -n client.rgw.a --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT]" "$D/monmap" >/dev/null
    ceph-mon -c "$CONF" --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring"
    ceph-mon -c "$CONF" -i a
    log "mon up; creating osd.0 ($OSD_STORE, $OSD_BYTES)"
    local osd_uuid; osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    "${C[@]}" osd new "$osd_uuid" 0 >/dev/null
    ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" 2>>"$D/log/osd-mkfs.log" || { tail -5 "$D/log/osd-mkfs.log" >&2; exit 1; }
    ceph-osd -c "$CONF" -i 0
    if [[ $WITH_MGR == 1 ]]; then ceph-mgr -c "$CONF" -i x; fi
    # pre-create the pools radosgw would otherwise create lazily on the first bucket/object (~2.5 s each)
    local p
    for p in .rgw.root default.rgw.log default.rgw.control default.rgw.meta \
             default.rgw.buckets.index default.rgw.buckets.data default.rgw.buckets.non-ec; do
      echo "osd pool create $p 8 8"; echo "osd pool application enable $p rgw"
    done | "${C[@]}" >>"$D/log/pools.log" 2>&1   # one interactive ceph session: no python start-up per command
    if curl -s -o /dev/null "http://127.0.0.1:$RGW_PORT/" 2>/dev/null; then
      log "port $RGW_PORT is already taken by another server: pick RGW_PORT"; false
    fi
    radosgw -c "$CONF" -n client.rgw.a
    log "waiting for radosgw"
    wait_rgw
    log "creating S3 user test"
    radosgw-admin -c "$CONF" user create --uid=test --display-name=test \
      --access-key="$S3_ACCESS_KEY" --secret-key="$S3_SECRET_KEY" >/dev/null
    touch "$D/.initialized"
  else
    alive mon.a || ceph-mon -c "$CONF" -i a
    alive osd.0 || ceph-osd -c "$CONF" -i 0
    if [[ $WITH_MGR == 1 ]]; then alive mgr.x || ceph-mgr -c "$CONF" -i x; fi
    alive client.rgw.a || radosgw -c "$CONF" -n client.rgw.a
    wait_rgw
  fi
  log "ready: http://127.0.0.1:$RGW_PORT (access $S3_ACCESS_KEY)"
}

stop_daemons() {
  local sig=$1 n pid pids=(); shift
  for n in "$@"; do
    [[ -f "$D/run/$n.pid" ]] || continue
    pid=$(cat "$D/run/$n.pid")
    if running "$pid"; then kill "-$sig" "$pid"; pids+=("$pid"); fi
  done
  for _ in $(seq 1 150); do
    local left=()
    for pid in "${pids[@]}"; do running "$pid" && left+=("$pid"); done
    pids=("${left[@]}")
    [[ ${#pids[@]} -eq 0 ]] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for n in "$@"; do rm -f "$D/run/$n.pid" "$D/run/$n.asok"; done
}

wait_rgw() {
  for _ in $(seq 1 240); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$RGW_PORT/" 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  log "radosgw did not come up; see $D/log"; return 1
}

stop() {
  local sig=TERM
  # memstore data dies with the OSD anyway: no point in a graceful (~2 s per daemon) shutdown
  if [[ $OSD_STORE == memstore ]]; then sig=KILL; fi
  # in order: radosgw's shutdown talks to the OSD (unwatch), and the OSD reports its stop to the mon;
  # stopping them together makes each wait for a timeout (10-16 s instead of ~2 s)
  stop_daemons "$sig" client.rgw.a mgr.x
  stop_daemons "$sig" osd.0
  stop_daemons "$sig" mon.a
  # memstore keeps everything in the OSD's RAM: a stopped memstore cluster cannot come back (its PGs are gone),
  # so forget it; the next 'start' builds a fresh one (~2 s). bluestore clusters restart with their data.
  if [[ $OSD_STORE == memstore ]]; then rm -f "$D/.initialized"; fi
}

case $CMD in
  start) start ;;
  stop) stop ;;
  status) "${C[@]}" -s; for n in mon.a osd.0 mgr.x client.rgw.a; do alive $n && echo "$n running pid $(cat "$D/run/$n.pid")" || echo "$n stopped"; done ;;
  env) echo "export S3_ENDPOINT=http://127.0.0.1:$RGW_PORT S3_KEY=$S3_ACCESS_KEY S3_SECRET=$S3_SECRET_KEY S3_REGION=us-east-1" ;;
  *) echo "usage: $0 start|stop|status|env [DIR]" >&2; exit 2 ;;
esac
