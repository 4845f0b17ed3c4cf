#!/usr/bin/env bash
# make-upgrade-fixture.sh COMMIT [OUTDIR] - a data directory written by the release at COMMIT,
# for test/upgrade/previous-release.test.ts: that commit's source (git archive, no worktree
# registered) built in a temp directory with this checkout's node_modules, its `tessera serve`
# filled by upgrade-fixture-images.mjs, stopped, and the data directory packed as
# OUTDIR/release-SHORT.tar.gz with OUTDIR/release-SHORT.json (what is in it, and which commit
# made it). OUTDIR defaults to test/fixtures/upgrade. Each release adds its own: the test
# opens every one it finds with the current code.
set -euo pipefail
commit=${1:?usage: $0 COMMIT [OUTDIR]}
here=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${2:-$here/test/fixtures/upgrade}")
full=$(git -C "$here" rev-parse --verify "$commit^{commit}")
short=${full:0:7}
work=$(mktemp -d /tmp/tessera-fixture-XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid"; wait "$pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

git -C "$here" archive "$full" | tar -x -C "$work" --one-top-level=src-tree
ln -s "$(realpath "$here/node_modules")" "$work/src-tree/node_modules"
(cd "$work/src-tree" && npx tsc -p . >/dev/null)

data="$work/data"
mkdir -p "$data"
echo '{"workers": 1, "gcIntervalSeconds": 0, "scrubIntervalSeconds": 0}' >"$work/config.json"
node "$work/src-tree/dist/src/cli/main.js" serve --data "$data" --port 0 --config "$work/config.json" \
  >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -s "$data/tessera.url" ] && break; sleep 0.1; done
[ -s "$data/tessera.url" ] || { cat "$work/serve.log" >&2; exit 1; }

node "$here/scripts/upgrade-fixture-images.mjs" "$(cat "$data/tessera.url")" "$work/images.json"
kill "$pid"
wait "$pid" || true
pid=

mkdir -p "$out"
# The catalog and the objects; not the lock, the token, LMDB's lock file or the space
# reserve (8 MiB of zeros the catalog makes again at open).
tar -C "$data" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
  -czf "$out/release-$short.tar.gz" catalog/data.mdb objects
node -e '
  const [file, commit, date, subject] = process.argv.slice(1);
  const made = JSON.parse(require("node:fs").readFileSync(file, "utf8"));
  const meta = { commit, date, subject, madeBy: "scripts/make-upgrade-fixture.sh", ...made };
  process.stdout.write(JSON.stringify(meta, null, 2) + "\n");
' "$work/images.json" "$full" "$(git -C "$here" log -1 --format=%cI "$full")" \
  "$(git -C "$here" log -1 --format=%s "$full")" >"$out/release-$short.json"
(cd "$here" && npx biome format --write "$out/release-$short.json" >/dev/null)
ls -l "$out/release-$short".*
