/**
 * `npm run bench:dedup-timing`: the dedup side channel and its mitigation. A tenant uploads
 * 64 MiB that another tenant already stored, and 64 MiB that nobody stored; how much faster
 * the first finishes is what an upload's timing tells about others' data. Measured with
 * dedupWriteThrough off (the default) and on, over HTTP to a server in this process, medians
 * of --rounds uploads each (the order of known and new alternates).
 *
 *   --size-mb N   bytes per upload (default 64)
 *   --rounds N    uploads of each kind per setting (default 9)
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { benchServer, log, median } from "./common.js";

const { values: opt } = parseArgs({
  options: { "size-mb": { type: "string", default: "64" }, rounds: { type: "string", default: "9" } },
});
const size = Number(opt["size-mb"]) * 1024 * 1024;
const rounds = Number(opt.rounds);

async function upload(url: string, data: Uint8Array<ArrayBuffer>): Promise<number> {
  const res = await fetch(`${url}/v2/images`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ disk_format: "raw", container_format: "bare" }),
  });
  const { id } = (await res.json()) as { id: string };
  const t = performance.now();
  const put = await fetch(`${url}/v2/images/${id}/file`, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream" },
    body: data,
  });
  if (put.status !== 204) throw new Error(`upload: ${put.status}`);
  return (performance.now() - t) / 1000;
}

const results: Record<string, { knownS: number; newS: number; ratio: number }> = {};
for (const writeThrough of [false, true]) {
  const { server, stop } = await benchServer({ dedupWriteThrough: writeThrough, fsync: true });
  try {
    const known = new Uint8Array(randomBytes(size));
    await upload(server.url, known); // another tenant's upload, stored once
    const k: number[] = [];
    const n: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const fresh = new Uint8Array(randomBytes(size));
      if (i % 2 === 0) {
        k.push(await upload(server.url, known));
        n.push(await upload(server.url, fresh));
      } else {
        n.push(await upload(server.url, fresh));
        k.push(await upload(server.url, known));
      }
    }
    const r = { knownS: median(k), newS: median(n), ratio: median(k) / median(n) };
    results[writeThrough ? "writeThrough" : "default"] = r;
    log(
      `dedupWriteThrough ${writeThrough}: already stored ${r.knownS.toFixed(3)} s, new ${r.newS.toFixed(3)} s, ` +
        `known ÷ new ×${r.ratio.toFixed(2)} (medians of ${rounds}, ${opt["size-mb"]} MiB)`,
    );
  } finally {
    await stop();
  }
}
console.log(JSON.stringify({ sizeMiB: Number(opt["size-mb"]), rounds, ...results }));
