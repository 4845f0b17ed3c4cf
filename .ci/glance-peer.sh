#!/usr/bin/env bash
# Copied from the team tools (../shared/tools/glance-peer/start.sh): CI runs on a clean clone where ../shared
# may not exist. Keep the two in step.
# One change: GLANCE_PEER_SECURE_RBAC=True sets enforce_secure_rbac and [oslo_policy]
# enforce_new_defaults, Glance's default policies that test/auth/access-rules.test.ts compares against.
# Start a real OpenStack Glance (Debian 12 package glance-api 2:25.1.0, Zed)
# as a no-auth reference peer: SQLite DB, file store, 127.0.0.1 only.
#
# Usage: start.sh [PORT] [DATA_DIR]
#   env GLANCE_PEER_PORT     (default 9292)
#   env GLANCE_PEER_DIR      (default ${TMPDIR:-/tmp}/glance-peer)
#   env GLANCE_PEER_HOST     (default 127.0.0.1)
#   env GLANCE_PEER_MULTISTORE=1  use multi-store config (enabled_backends
#                            local:file,extra:file,http:http; default local)
#                            -> /v2/info/stores works,
#                            copy-image import works. Default 0 = legacy
#                            single-store ([glance_store] stores=file,http).
#   env GLANCE_PEER_WORKERS  (default 1; 0 = no fork, single process)
#   env GLANCE_PEER_AUTH     none (default): paste flavor empty = pipeline with
#                            "unauthenticated-context": every request is an admin
#                            context with NO project (owner=null). Image import
#                            and tasks then fail (tasks.owner NOT NULL -> 500).
#                            headers: still no Keystone, but a tiny paste filter
#                            (lib/glance_peer_auth.py, written below) marks every
#                            request as authenticated and fills X-Project-Id /
#                            X-User-Id / X-Roles when the client did not send
#                            them (defaults: project "peer-project", user
#                            "peer-user", roles "admin,member,reader"); glance's
#                            normal "context" filter + policy then apply. Send
#                            X-Project-Id / X-Roles yourself to act as other
#                            tenants (visibility, members, 403s).
#                            keystone: real Keystone (paste flavor "keystone" =
#                            authtoken + context). Needs GLANCE_PEER_KEYSTONE_URL
#                            (e.g. http://127.0.0.1:15000/v3) and a service user:
#                            GLANCE_PEER_KEYSTONE_USER (glance), _PASSWORD (glancepw),
#                            _PROJECT (service). See TEMPEST.md.
#   env GLANCE_PEER_DEBUG=1  debug logging
#   env GLANCE_PEER_NO_INSTALL=1  skip the apt-get step
# Prints the endpoint on the last line of stdout, e.g. http://127.0.0.1:9292
# Stop it with stop.sh (same DATA_DIR / env).
set -euo pipefail

PORT="${1:-${GLANCE_PEER_PORT:-9292}}"
DIR="${2:-${GLANCE_PEER_DIR:-${TMPDIR:-/tmp}/glance-peer}}"
HOST="${GLANCE_PEER_HOST:-127.0.0.1}"
MULTI="${GLANCE_PEER_MULTISTORE:-0}"
WORKERS="${GLANCE_PEER_WORKERS:-1}"
DEBUG="${GLANCE_PEER_DEBUG:-0}"
AUTH="${GLANCE_PEER_AUTH:-none}"
PY=/usr/bin/python3   # NOT a pyenv/venv python: glance lives in Debian's dist-packages

log() { echo "glance-peer: $*" >&2; }

# ---------------------------------------------------------------- install
PKGS="glance-api python3-glanceclient python3-openstackclient python3-openstacksdk qemu-utils curl"
need_install=0
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_install=1
done
if [ "$need_install" = 1 ] && [ "${GLANCE_PEER_NO_INSTALL:-0}" != 1 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  log "installing $PKGS (apt)"
  # Do not let the package start a system glance-api on 9292 where systemd/sysv exist.
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get -o DPkg::Lock::Timeout=900 -y install $PKGS >&2; then
    $SUDO apt-get -o DPkg::Lock::Timeout=900 update >&2
    $SUDO apt-get -o DPkg::Lock::Timeout=900 -y install $PKGS >&2
  fi
fi
command -v glance-api >/dev/null || { log "glance-api not installed"; exit 1; }

# ---------------------------------------------------------------- already running?
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
PIDFILE="$DIR/glance-api.pid"
ENDPOINT="http://$HOST:$PORT"
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  log "already running (pid $(cat "$PIDFILE")) with data dir $DIR"
  echo "$ENDPOINT"; exit 0
fi
if curl -s -o /dev/null --max-time 2 "$ENDPOINT/healthcheck"; then
  log "something else already answers on $ENDPOINT; refusing to start"; exit 1
fi

# ---------------------------------------------------------------- config
mkdir -p "$DIR"/{etc,images,images-extra,staging,tasks,work,lock,cache}
CONF="$DIR/etc/glance-api.conf"
cp /etc/glance/glance-api-paste.ini "$DIR/etc/glance-api-paste.ini"
FLAVOR=""
mkdir -p "$DIR/lib"
if [ "$AUTH" = headers ]; then
  FLAVOR="peerheaders"
  cat > "$DIR/lib/glance_peer_auth.py" <<'PY_EOF'
"""Fake identity for a Keystone-less Glance: trust/fill X-* identity headers."""


class PeerAuth(object):
    def __init__(self, app, conf):
        self.app = app
        self.project = conf.get('default_project', 'peer-project')
        self.user = conf.get('default_user', 'peer-user')
        self.roles = conf.get('default_roles', 'admin,member,reader')

    def __call__(self, environ, start_response):
        environ['HTTP_X_IDENTITY_STATUS'] = 'Confirmed'
        if not (environ.get('HTTP_X_PROJECT_ID') or environ.get('HTTP_X_TENANT_ID')):
            environ['HTTP_X_PROJECT_ID'] = self.project
        environ.setdefault('HTTP_X_USER_ID', self.user)
        environ.setdefault('HTTP_X_ROLES', self.roles)
        return self.app(environ, start_response)


def filter_factory(global_conf, **local_conf):
    def _filter(app):
        return PeerAuth(app, local_conf)
    return _filter
PY_EOF
  cat >> "$DIR/etc/glance-api-paste.ini" <<'INI_EOF'

# added by glance-peer start.sh (GLANCE_PEER_AUTH=headers): no keystone, identity from headers
[pipeline:glance-api-peerheaders]
pipeline = cors healthcheck http_proxy_to_wsgi versionnegotiation osprofiler peerauth context rootapp

[filter:peerauth]
paste.filter_factory = glance_peer_auth:filter_factory
INI_EOF
fi
# Keep the package's default policy (no policy.yaml): the unauthenticated
# context is is_admin=True, so everything is allowed.
if [ "$MULTI" = 1 ]; then
  STORE_DEFAULT="enabled_backends = local:file,extra:file,http:http"
  STORE_SECTIONS="[glance_store]
default_backend = local

[local]
filesystem_store_datadir = $DIR/images/
store_description = local file store

[extra]
filesystem_store_datadir = $DIR/images-extra/
store_description = second file store (copy-image target)

[http]
store_description = read-only http store

[os_glance_staging_store]
filesystem_store_datadir = $DIR/staging/

[os_glance_tasks_store]
filesystem_store_datadir = $DIR/tasks/"
  METHODS="glance-direct,web-download,copy-image"
else
  # legacy single-store: the glance-direct staging area is node_staging_uri
  STORE_DEFAULT="node_staging_uri = file://$DIR/staging"
  STORE_SECTIONS="[glance_store]
stores = file,http
default_store = file
filesystem_store_datadir = $DIR/images/"
  # copy-image needs multi-store (import answers 400 without it)
  METHODS="glance-direct,web-download"
fi

KS_CONF=""
if [ "$AUTH" = keystone ]; then
  FLAVOR="keystone"
  KS_URL="${GLANCE_PEER_KEYSTONE_URL:?set GLANCE_PEER_KEYSTONE_URL for GLANCE_PEER_AUTH=keystone}"
  KS_CONF="[keystone_authtoken]
www_authenticate_uri = $KS_URL
auth_url = $KS_URL
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = ${GLANCE_PEER_KEYSTONE_PROJECT:-service}
username = ${GLANCE_PEER_KEYSTONE_USER:-glance}
password = ${GLANCE_PEER_KEYSTONE_PASSWORD:-glancepw}
"
fi

cat > "$CONF" <<CONF_EOF
[DEFAULT]
bind_host = $HOST
bind_port = $PORT
workers = $WORKERS
debug = $( [ "$DEBUG" = 1 ] && echo True || echo False )
use_stderr = True
# bounds=True list option: must be written in [brackets]
enabled_import_methods = [$METHODS]
image_cache_dir = $DIR/cache
# show the v2.1 'locations' API? keep defaults (off) like most clouds
show_image_direct_url = False
show_multiple_locations = False
$STORE_DEFAULT

enforce_secure_rbac = ${GLANCE_PEER_SECURE_RBAC:-False}

[oslo_policy]
enforce_new_defaults = ${GLANCE_PEER_SECURE_RBAC:-False}

[database]
connection = sqlite:///$DIR/glance.sqlite

[paste_deploy]
# empty flavor => pipeline "glance-api" = unauthenticated-context, no keystone
# "peerheaders" => pipeline added by start.sh (GLANCE_PEER_AUTH=headers)
flavor = $FLAVOR
config_file = $DIR/etc/glance-api-paste.ini

[oslo_concurrency]
lock_path = $DIR/lock

[task]
work_dir = $DIR/work

[import_filtering_opts]
# web-download: allow loopback sources on any port (there is no internet here;
# serve the file with e.g. python3 -m http.server on 127.0.0.1).
# bounds=True list options: the [brackets] are required
allowed_hosts = [127.0.0.1,localhost]
allowed_ports = []

$STORE_SECTIONS

$KS_CONF
CONF_EOF

# ---------------------------------------------------------------- db + start
if [ ! -s "$DIR/glance.sqlite" ]; then
  log "glance-manage db_sync -> $DIR/glance.sqlite"
  glance-manage --config-file "$CONF" db_sync >"$DIR/db_sync.log" 2>&1 || {
    log "db_sync failed, see $DIR/db_sync.log"; tail -20 "$DIR/db_sync.log" >&2; exit 1; }
  # the metadata definitions catalog (GET /v2/metadefs/...) is empty unless loaded
  glance-manage --config-file "$CONF" db_load_metadefs /etc/glance/metadefs >>"$DIR/db_sync.log" 2>&1 || \
    log "db_load_metadefs failed (non fatal), see $DIR/db_sync.log"
fi

log "starting glance-api ($ENDPOINT, data $DIR, multistore=$MULTI, auth=$AUTH, workers=$WORKERS)"
# setsid: own process group, so stop.sh can end exactly this server and its workers
PYTHONPATH="$DIR/lib${PYTHONPATH:+:$PYTHONPATH}" setsid glance-api --config-file "$CONF" >>"$DIR/glance-api.log" 2>&1 < /dev/null &
echo $! > "$PIDFILE"

for i in $(seq 1 120); do
  if curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$ENDPOINT/versions" 2>/dev/null | grep -q '^200$'; then
    log "up after ~$((i/2))s (pid $(cat "$PIDFILE")); log: $DIR/glance-api.log"
    echo "$ENDPOINT"; exit 0
  fi
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    log "glance-api exited; last log lines:"; tail -30 "$DIR/glance-api.log" >&2; rm -f "$PIDFILE"; exit 1
  fi
  sleep 0.5
done
log "timed out waiting for $ENDPOINT"; tail -30 "$DIR/glance-api.log" >&2; exit 1
