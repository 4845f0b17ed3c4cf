/**
 * The server's background scrubber: on its schedule it reads every chunk, and what it finds
 * shows in the metrics (and the log) while the server goes on serving.
 */
import { open, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { prng } from "../helpers/data.js";
import { client, startTestServer } from "../helpers/server.js";

const MiB = 1024 * 1024;

function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe("background scrub", () => {
  it("finds a chunk gone bad on disk and counts it in the metrics", async () => {
    const s = await startTestServer({
      gcIntervalSeconds: 0,
      scrubIntervalSeconds: 1,
      scrubBytesPerSecond: 0,
    });
    try {
      const api = client(() => s.url);
      const img = await api.createImage({ name: "scrubbed", disk_format: "raw", container_format: "bare" });
      expect((await api.upload(img.id, Buffer.from(prng(7, 3 * MiB)))).status).toBe(204);
      const packs = join(s.dataDir, "objects", "packs");
      const sub = (await readdir(packs))[0] as string;
      const fh = await open(join(packs, sub, (await readdir(join(packs, sub)))[0] as string), "r+");
      await fh.write(Buffer.from([0xa5]), 0, 1, 150_000);
      await fh.close();
      const deadline = Date.now() + 15_000;
      let bad = 0;
      while (Date.now() < deadline && bad === 0) {
        await new Promise((r) => setTimeout(r, 250));
        bad = sample(
          await (await api.get("/metrics")).text(),
          'tessera_scrub_bad_chunks_total{store="local"}',
        );
      }
      expect(bad).toBe(1);
      expect((await api.get(`/v2/images/${img.id}`)).status).toBe(200);
    } finally {
      await s.close();
      await rm(s.dataDir, { recursive: true, force: true });
    }
  });

  it("shows a scrub's progress in the metrics while it runs", async () => {
    // Paced at 1 MB/s, the 3 MB store takes about three seconds to scrub.
    const s = await startTestServer({
      gcIntervalSeconds: 0,
      scrubIntervalSeconds: 1,
      scrubBytesPerSecond: 1_000_000,
    });
    try {
      const api = client(() => s.url);
      const img = await api.createImage({ name: "paced", disk_format: "raw", container_format: "bare" });
      expect((await api.upload(img.id, Buffer.from(prng(8, 12 * MiB)))).status).toBe(204);
      const deadline = Date.now() + 15_000;
      let seen = 0;
      while (Date.now() < deadline && !(seen > 0 && seen < 1)) {
        await new Promise((r) => setTimeout(r, 100));
        seen = sample(
          await (await api.get("/metrics")).text(),
          'tessera_scrub_progress_ratio{step="local: chunks checked"}',
        );
      }
      expect(seen).toBeGreaterThan(0);
      expect(seen).toBeLessThan(1);
    } finally {
      await s.close();
      await rm(s.dataDir, { recursive: true, force: true });
    }
  });
});
