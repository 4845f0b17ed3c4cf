#!/usr/bin/env bash
# Copied from the team tools (../shared/tools/keystone/start.sh): CI runs on a clean clone where ../shared
# may not exist. Keep the two in step.
# Standalone OpenStack Keystone (Debian 12 package, 2:22.0.2 "Zed") on 127.0.0.1, SQLite, uwsgi; no apache/systemd.
# Debian packages: apt-get -o DPkg::Lock::Timeout=900 -y install --no-install-recommends keystone uwsgi uwsgi-plugin-python3
#   (the package's postinst leaves /etc/keystone unconfigured and policy-rc.d keeps it from starting: we use our own conf)
#
# usage: start.sh [DIR]   (DIR default ./.keystone-peer; conf, sqlite db, keys, logs, pid all live there)
# env: KEYSTONE_PORT=5000  KEYSTONE_ADMIN_PASSWORD=admin-pass
#      KEYSTONE_SVC_USER=svc KEYSTONE_SVC_PASSWORD=svc-pass   (user with role "service"+"admin" in project "service":
#                                                              the identity a storage service uses to validate tokens)
#      KEYSTONE_DEMO_USER=demo KEYSTONE_DEMO_PASSWORD=demo-pass (user with role "member" in project "demo")
#      KEYSTONE_WORKERS=2
# Idempotent: if keystone already answers for DIR, nothing happens; a stopped one restarts with its data
# (and its port). Remove DIR to start from scratch.
# Prints "export OS_AUTH_URL=..." on stdout when ready.
set -euo pipefail
D=${1:-./.keystone-peer}
mkdir -p "$D"
D=$(cd "$D" && pwd)
PORT=${KEYSTONE_PORT:-5000}
[[ -f "$D/port" ]] && PORT=$(cat "$D/port")   # the catalog in the db names the port it was bootstrapped with
ADMIN_PASS=${KEYSTONE_ADMIN_PASSWORD:-admin-pass}
SVC_USER=${KEYSTONE_SVC_USER:-svc}
SVC_PASS=${KEYSTONE_SVC_PASSWORD:-svc-pass}
DEMO_USER=${KEYSTONE_DEMO_USER:-demo}
DEMO_PASS=${KEYSTONE_DEMO_PASSWORD:-demo-pass}
WORKERS=${KEYSTONE_WORKERS:-2}
URL=http://127.0.0.1:$PORT/v3
CONF=$D/keystone.conf
log() { echo "[keystone-peer $(date +%T)] $*" >&2; }
up() { curl -fsS -o /dev/null "$URL" 2>/dev/null; }

running() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ -n $st && $st != Z* ]]; }

if [[ -f "$D/uwsgi.pid" ]] && running "$(cat "$D/uwsgi.pid")" && up; then
  log "already running (pid $(cat "$D/uwsgi.pid"))"
else
  mkdir -p "$D/log"
  if [[ ! -f "$D/.bootstrapped" ]]; then
    rm -rf "$D/keystone.db" "$D/fernet-keys" "$D/credential-keys"
    echo "$PORT" > "$D/port"
    cat > "$CONF" <<EOF
[DEFAULT]
log_dir = $D/log
log_file = keystone.log
use_stderr = false
debug = false
[database]
connection = sqlite:///$D/keystone.db
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = $D/fernet-keys
max_active_keys = 3
[fernet_receipts]
key_repository = $D/fernet-keys
[credential]
key_repository = $D/credential-keys
[cache]
# per-worker in-process cache: token validation ~13 ms instead of ~450 ms (keystone does ~100 SQL queries per
# validation uncached). Revocations are seen at once by all workers; role/assignment changes may be served
# stale by the other worker until expiration_time: use KEYSTONE_WORKERS=1 if tests change roles and re-validate.
enabled = true
backend = dogpile.cache.memory
expiration_time = 60
[identity]
# bcrypt cost 4 (minimum) instead of 12: password auth ~15 ms instead of ~200 ms. Test-only setting.
password_hash_rounds = 4
[oslo_policy]
enforce_scope = false
enforce_new_defaults = false
EOF
    KM=(keystone-manage --config-file "$CONF")
    log "db_sync"
    # (keystone-manage prints harmless eventlet "Exception ignored in _removeHandlerRef" noise at exit: sent to the log)
    "${KM[@]}" db_sync 2>>"$D/log/manage.log"
    "${KM[@]}" fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" 2>>"$D/log/manage.log"
    "${KM[@]}" credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" 2>>"$D/log/manage.log"
    log "bootstrap"
    "${KM[@]}" bootstrap --bootstrap-password "$ADMIN_PASS" \
      --bootstrap-admin-url "$URL" --bootstrap-internal-url "$URL" --bootstrap-public-url "$URL" \
      --bootstrap-region-id RegionOne 2>>"$D/log/manage.log"
    NEED_USERS=1
  fi
  log "starting uwsgi on 127.0.0.1:$PORT"
  rm -f "$D/uwsgi.pid"
  # --http-socket: uwsgi itself speaks HTTP (no separate router process); lazy-apps: load keystone in each worker
  uwsgi --plugin python3 --http-socket "127.0.0.1:$PORT" --wsgi-file /usr/bin/keystone-wsgi-public \
    --env "OS_KEYSTONE_CONFIG_FILES=$CONF" --chdir "$D" \
    --master --processes "$WORKERS" --threads 1 --lazy-apps --die-on-term --need-app --no-orphans \
    --buffer-size 65535 --pidfile "$D/uwsgi.pid" --daemonize "$D/log/uwsgi.log" --disable-logging
  for _ in $(seq 1 120); do up && break; sleep 0.25; done
  up || { log "keystone did not come up; see $D/log"; exit 1; }
  if [[ ${NEED_USERS:-0} == 1 ]]; then
    log "creating projects/users/roles"
    ok=0
    for _ in 1 2 3; do   # idempotent get-or-create; retried in case the first requests hit a still-loading worker
      if /usr/bin/python3 - "$URL" "$ADMIN_PASS" "$SVC_USER" "$SVC_PASS" "$DEMO_USER" "$DEMO_PASS" <<'PY'
import json, sys, urllib.request
url, admin_pass, svc_user, svc_pass, demo_user, demo_pass = sys.argv[1:]
def call(method, path, body=None, token=None, want_token=False):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={'Content-Type': 'application/json', **({'X-Auth-Token': token} if token else {})})
    with urllib.request.urlopen(req, timeout=30) as r:
        data = r.read()
        return (r.headers['X-Subject-Token'] if want_token else None, json.loads(data) if data else None)
tok, _ = call('POST', '/auth/tokens', {'auth': {'identity': {'methods': ['password'], 'password': {'user': {
    'name': 'admin', 'domain': {'id': 'default'}, 'password': admin_pass}}},
    'scope': {'project': {'name': 'admin', 'domain': {'id': 'default'}}}}}, want_token=True)
def get_or_create(kind, name, body):
    found = call('GET', f'/{kind}s?name={name}', token=tok)[1][f'{kind}s']
    return found[0]['id'] if found else call('POST', f'/{kind}s', {kind: body}, token=tok)[1][kind]['id']
roles = {n: get_or_create('role', n, {'name': n}) for n in ('admin', 'service', 'member', 'reader')}
svc_proj = get_or_create('project', 'service', {'name': 'service', 'domain_id': 'default'})
demo_proj = get_or_create('project', 'demo', {'name': 'demo', 'domain_id': 'default'})
svc = get_or_create('user', svc_user, {'name': svc_user, 'password': svc_pass, 'domain_id': 'default', 'default_project_id': svc_proj})
demo = get_or_create('user', demo_user, {'name': demo_user, 'password': demo_pass, 'domain_id': 'default', 'default_project_id': demo_proj})
for role in ('service', 'admin'):
    call('PUT', f'/projects/{svc_proj}/users/{svc}/roles/{roles[role]}', token=tok)
call('PUT', f'/projects/{demo_proj}/users/{demo}/roles/{roles["member"]}', token=tok)
PY
      then ok=1; break; fi
      sleep 1
    done
    [[ $ok == 1 ]] || { log "could not create users (see $D/log/keystone.log)"; exit 1; }
    touch "$D/.bootstrapped"
  fi
  log "ready (pid $(cat "$D/uwsgi.pid"))"
fi
echo "export OS_AUTH_URL=$URL OS_ADMIN_PASSWORD=$ADMIN_PASS OS_SVC_USER=$SVC_USER OS_SVC_PASSWORD=$SVC_PASS OS_DEMO_USER=$DEMO_USER OS_DEMO_PASSWORD=$DEMO_PASS"
