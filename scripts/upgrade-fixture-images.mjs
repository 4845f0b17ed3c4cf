#!/usr/bin/env node
// upgrade-fixture-images.mjs URL OUT.json - fills a running Tessera (of any release) with the
// small, deterministic set of images the upgrade test reads back, and writes what it made to
// OUT.json: ids, names, md5s, tags, members, properties. Run by make-upgrade-fixture.sh.
//
// The set: two images sharing chunks (a base and one derived from it), an os_hidden one, one
// with all-zero chunks, a tiny one, one never uploaded (queued), shared with members, tagged,
// with a custom property; and one uploaded, deleted and collected (trash and condemned chunks
// in the catalog, as a live one has).
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";

const [url, out] = process.argv.slice(2);
if (!url || !out) {
  console.error("usage: upgrade-fixture-images.mjs URL OUT.json");
  process.exit(2);
}
const KiB = 1024;

/** Deterministic bytes (xorshift32 from `seed`): the same on every run and machine. */
function bytes(seed, length) {
  const b = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

async function call(method, path, body, type = "application/json") {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": type },
    body: body === undefined ? undefined : type === "application/json" ? JSON.stringify(body) : body,
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? undefined : res.json();
}

const base = bytes(1, 320 * KiB);
const specs = [
  { name: "base", data: base, tags: ["base", "ubuntu"], os_distro: "ubuntu", members: ["proj-b", "proj-c"] },
  {
    name: "derived",
    data: Buffer.concat([base.subarray(0, 256 * KiB), bytes(2, 64 * KiB)]),
    tags: ["derived"],
  },
  { name: "hidden", data: bytes(3, 96 * KiB), os_hidden: true },
  { name: "zeros", data: Buffer.concat([Buffer.alloc(128 * KiB), bytes(4, 64 * KiB)]) },
  { name: "tiny", data: Buffer.from("hello from the previous release\n") },
  { name: "queued" },
];

const images = [];
for (const s of specs) {
  const body = { name: s.name, disk_format: "raw", container_format: "bare", owner: "proj-a" };
  if (s.tags) body.tags = s.tags;
  if (s.os_distro) body.os_distro = s.os_distro;
  if (s.os_hidden) body.os_hidden = true;
  if (s.members) body.visibility = "shared";
  const { id } = await call("POST", "/v2/images", body);
  if (s.data) await call("PUT", `/v2/images/${id}/file`, s.data, "application/octet-stream");
  for (const member of s.members ?? []) await call("POST", `/v2/images/${id}/members`, { member });
  const rec = await call("GET", `/v2/images/${id}`);
  images.push({
    id,
    name: s.name,
    status: rec.status,
    size: rec.size,
    md5: s.data ? createHash("md5").update(s.data).digest("hex") : null,
    checksum: rec.checksum,
    tags: [...rec.tags].sort(),
    os_hidden: rec.os_hidden,
    visibility: rec.visibility,
    os_distro: rec.os_distro ?? null,
    members: (s.members ?? []).slice().sort(),
  });
}

// Deleted and collected with the default grace: its pack waits in the trash.
const doomed = await call("POST", "/v2/images", {
  name: "deleted",
  disk_format: "raw",
  container_format: "bare",
});
await call("PUT", `/v2/images/${doomed.id}/file`, bytes(5, 80 * KiB), "application/octet-stream");
await call("DELETE", `/v2/images/${doomed.id}`);
await call("POST", "/tessera/v1/gc", {});

await writeFile(out, `${JSON.stringify({ images, deleted: [doomed.id] }, null, 2)}\n`);
console.log(`made ${images.length} images at ${url}`);
