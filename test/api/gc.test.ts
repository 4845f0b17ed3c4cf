/**
 * Garbage collection as operators run it: `tessera gc` on a stopped server's directory (dry
 * run first), `tessera gc` while the server runs (it asks the server), and the server's own
 * schedule. Deleting an image gives its unshared bytes back within one collection.
 */
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { prng } from "../helpers/data.js";
import { runAsync } from "../helpers/run.js";
import { client, startTestServer, type TestServer } from "../helpers/server.js";

const MiB = 1024 * 1024;
const BIN = new URL("../../dist/src/cli/main.js", import.meta.url).pathname;

/** Bytes of the packs under a filesystem store's directory. */
async function packBytes(dataDir: string): Promise<number> {
  let total = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else total += (await stat(p)).size;
    }
  };
  await walk(join(dataDir, "objects", "packs"));
  return total;
}

/** Runs the CLI without blocking this process (the server under test may live in it). */
function tessera(args: string[]) {
  return runAsync(process.execPath, [BIN, ...args]);
}

/** Two images sharing 4 MiB; the second, with 3 MiB of its own, deleted. */
async function keepOneDeleteOne(s: TestServer): Promise<{ kept: string; keptData: Buffer; before: number }> {
  const api = client(() => s.url);
  const base = Buffer.from(prng(1, 4 * MiB));
  const other = Buffer.concat([base, Buffer.from(prng(2, 3 * MiB))]);
  const kept = await api.createImage({ name: "kept", disk_format: "raw", container_format: "bare" });
  expect((await api.upload(kept.id, base)).status).toBe(204);
  const gone = await api.createImage({ name: "gone", disk_format: "raw", container_format: "bare" });
  expect((await api.upload(gone.id, other)).status).toBe(204);
  const before = await packBytes(s.dataDir);
  expect((await api.request("DELETE", `/v2/images/${gone.id}`)).status).toBe(204);
  return { kept: kept.id, keptData: base, before };
}

describe("garbage collection of a served store", () => {
  it("tessera gc on a stopped server's directory: a dry run changes nothing, then a run frees the deleted image's own bytes", async () => {
    const s = await startTestServer({ gcIntervalSeconds: 0 });
    try {
      const { kept, keptData, before } = await keepOneDeleteOne(s);
      await s.close();
      const dry = await tessera(["gc", "--data", s.dataDir, "--grace", "0", "--dry-run"]);
      expect(dry.status, dry.err).toBe(0);
      const dryReport = JSON.parse(dry.out);
      expect(dryReport.dryRun).toBe(true);
      expect(dryReport.stores[0].bytesDropped).toBeGreaterThan(3 * MiB - 1);
      expect(await packBytes(s.dataDir)).toBe(before);
      const real = await tessera(["gc", "--data", s.dataDir, "--grace", "0"]);
      expect(real.status, real.err).toBe(0);
      expect(JSON.parse(real.out).stores[0].bytesDropped).toBe(dryReport.stores[0].bytesDropped);
      const after = await packBytes(s.dataDir);
      expect(before - after).toBeGreaterThan(3 * MiB - 1);
      expect(after).toBeLessThan(5 * MiB);
      const again = await startTestServer({ gcIntervalSeconds: 0 }, s.dataDir);
      try {
        const res = await client(() => again.url).get(`/v2/images/${kept}/file`);
        expect(Buffer.from(await res.arrayBuffer()).equals(keptData)).toBe(true);
      } finally {
        await again.close();
      }
    } finally {
      await rm(s.dataDir, { recursive: true, force: true });
    }
  });

  it("tessera gc while the server runs asks the server, which frees the bytes and keeps serving", async () => {
    const s = await startTestServer({ gcIntervalSeconds: 0 });
    try {
      const { kept, keptData, before } = await keepOneDeleteOne(s);
      const r = await tessera(["gc", "--data", s.dataDir, "--grace", "0"]);
      expect(r.status, r.err).toBe(0);
      expect(JSON.parse(r.out).stores[0].objectsDeleted).toBeGreaterThan(0);
      expect(before - (await packBytes(s.dataDir))).toBeGreaterThan(3 * MiB - 1);
      const res = await client(() => s.url).get(`/v2/images/${kept}/file`);
      expect(Buffer.from(await res.arrayBuffer()).equals(keptData)).toBe(true);
      const bad = await client(() => s.url).request("POST", "/tessera/v1/gc", {
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ graceSeconds: -1 }),
      });
      expect(bad.status).toBe(400);
    } finally {
      await s.close();
      await rm(s.dataDir, { recursive: true, force: true });
    }
  });

  it("collects on its own schedule", async () => {
    const s = await startTestServer({ gcIntervalSeconds: 1, gcGraceSeconds: 0 });
    try {
      const { before } = await keepOneDeleteOne(s);
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && before - (await packBytes(s.dataDir)) < 3 * MiB) {
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(before - (await packBytes(s.dataDir))).toBeGreaterThan(3 * MiB - 1);
    } finally {
      await s.close();
      await rm(s.dataDir, { recursive: true, force: true });
    }
  });
});
