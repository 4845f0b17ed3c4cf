/**
 * Dedup accounting as operators see it: the extension API under /tessera/v1 and `tessera
 * stats` (a table by default, JSON with --json), beside a running server.
 */
import { rm } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { prng } from "../helpers/data.js";
import { runAsync } from "../helpers/run.js";
import { client, startTestServer } from "../helpers/server.js";

const MiB = 1024 * 1024;
const BIN = new URL("../../dist/src/cli/main.js", import.meta.url).pathname;

describe("dedup accounting over HTTP and the CLI", () => {
  it("answers GET /tessera/v1/stats and /tessera/v1/images/{id}/stats, and tessera stats prints the same", async () => {
    const s = await startTestServer({ gcIntervalSeconds: 0 });
    try {
      const api = client(() => s.url);
      const data = Buffer.from(prng(1, 3 * MiB));
      const ids: string[] = [];
      for (const name of ["one", "two"]) {
        const img = await api.createImage({ name, disk_format: "raw", container_format: "bare" });
        expect((await api.upload(img.id, data)).status).toBe(204);
        ids.push(img.id);
      }
      const st = (await (await api.get("/tessera/v1/stats")).json()) as {
        stores: { store: string; holders: number; logicalBytes: number; storedBytes: number }[];
        total: { dedupRatio: number };
      };
      expect(st.stores[0]).toMatchObject({ store: "local", holders: 2, logicalBytes: 2 * data.length });
      expect(st.total.dedupRatio).toBeCloseTo((2 * data.length) / (st.stores[0]?.storedBytes as number), 1);
      const one = await (await api.get(`/tessera/v1/images/${ids[0]}/stats`)).json();
      expect(one).toMatchObject({ image: ids[0], size: data.length, uniqueBytes: 0, imagesWithSameData: 1 });
      expect((await api.get("/tessera/v1/images/nope/stats")).status).toBe(404);

      const json = await runAsync(process.execPath, [BIN, "stats", "--data", s.dataDir, "--json"]);
      expect(json.status, json.err).toBe(0);
      expect(JSON.parse(json.out)).toEqual(st);
      const table = await runAsync(process.execPath, [BIN, "stats", "--data", s.dataDir]);
      expect(table.out).toMatch(/^store\s+objects\s+images\s+logical\s+stored\s+packs\s+dedup$/m);
      expect(table.out).toMatch(/^local\s+1\s+2\s+6\.3 MB/m);
      const image = await runAsync(process.execPath, [
        BIN,
        "stats",
        "--data",
        s.dataDir,
        "--image",
        ids[1] as string,
      ]);
      expect(image.out).toMatch(/^imagesWithSameData\s+1$/m);
    } finally {
      await s.close();
      await rm(s.dataDir, { recursive: true, force: true });
    }
  });
});
