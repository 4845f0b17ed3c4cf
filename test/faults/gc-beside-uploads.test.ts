/**
 * Collections with no grace, through the API and `tessera gc`, beside uploads and deletes through
 * the API: every upload succeeds
 * (an upload that deduplicates against a chunk a collection is dropping writes or keeps its own
 * copy, it never fails), and every image still active reads back with its md5.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";
import { BIN } from "../helpers/child-server.js";
import { prng } from "../helpers/data.js";
import { runAsync } from "../helpers/run.js";
import { client, sharedServer } from "../helpers/server.js";

const server = sharedServer({ gcIntervalSeconds: 0, scrubIntervalSeconds: 0 });
const api = client(() => server().url);
const MiB = 1024 * 1024;

test("60 uploads sharing a base beside deletes and back-to-back collections with no grace: none fails, none is damaged", async () => {
  const token = readFileSync(join(server().dataDir, "tessera.token"), "utf8").trim();
  const base = Buffer.from(prng(1, 6 * MiB));
  let stop = false;
  let gcs = 0;
  // And `tessera gc --grace 0` from the command line, as an operator would, beside them.
  const cli = (async () => {
    let runs = 0;
    while (!stop) {
      const r = await runAsync(process.execPath, [BIN, "gc", "--grace", "0", "--data", server().dataDir]);
      expect(r.status, r.err).toBe(0);
      runs++;
    }
    return runs;
  })();
  const collector = (async () => {
    while (!stop) {
      const r = await fetch(`${server().url}/tessera/v1/gc`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Auth-Token": token },
        body: JSON.stringify({ graceSeconds: 0 }),
      });
      expect(r.status).toBe(200);
      gcs++;
    }
  })();
  const active = new Map<string, string>();
  const failures: string[] = [];
  const worker = async (w: number) => {
    for (let i = 0; i < 15; i++) {
      const own = Buffer.from(prng(100 * w + i, 256 * 1024 * (1 + (i % 4))));
      const data = i % 3 === 0 ? base : Buffer.concat([base.subarray(0, (1 + (i % 5)) * MiB), own]);
      const img = await api.createImage({ name: `w${w}-${i}`, disk_format: "raw", container_format: "bare" });
      const res = await api.upload(img.id, data);
      if (res.status !== 204) failures.push(`${res.status} ${await res.text()}`);
      else active.set(img.id, createHash("md5").update(data).digest("hex"));
      // Every other image goes again at once: its chunks become garbage the collector chases.
      if (i % 2 === 1) {
        expect((await api.request("DELETE", `/v2/images/${img.id}`)).status).toBe(204);
        active.delete(img.id);
      }
    }
  };
  await Promise.all([0, 1, 2, 3].map(worker));
  stop = true;
  await collector;
  expect(await cli).toBeGreaterThan(0);
  expect(failures).toEqual([]);
  expect(gcs).toBeGreaterThan(3);
  for (const [id, md5] of active) {
    const got = Buffer.from(await (await api.get(`/v2/images/${id}/file`)).arrayBuffer());
    expect(createHash("md5").update(got).digest("hex"), id).toBe(md5);
  }
});
