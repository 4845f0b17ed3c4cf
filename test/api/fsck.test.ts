/**
 * `tessera fsck` as an operator runs it: it reports bit rot and exits 1; with --repair and no
 * other store to mend from, the image's data is marked damaged and its download is refused
 * with a clear 503 instead of bytes that are wrong.
 */
import { open, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { prng } from "../helpers/data.js";
import { runAsync } from "../helpers/run.js";
import { client, startTestServer } from "../helpers/server.js";

const MiB = 1024 * 1024;
const BIN = new URL("../../dist/src/cli/main.js", import.meta.url).pathname;

describe("tessera fsck", () => {
  it("reports a flipped byte (exit 1); --repair with no other copy marks the image damaged, and its download is a 503", async () => {
    const s = await startTestServer({ gcIntervalSeconds: 0 });
    try {
      const api = client(() => s.url);
      const img = await api.createImage({ name: "rot", disk_format: "raw", container_format: "bare" });
      expect((await api.upload(img.id, Buffer.from(prng(5, 3 * MiB)))).status).toBe(204);
      await s.close();
      const packs = join(s.dataDir, "objects", "packs");
      const sub = (await readdir(packs))[0] as string;
      const fh = await open(join(packs, sub, (await readdir(join(packs, sub)))[0] as string), "r+");
      await fh.write(Buffer.from([0x5a]), 0, 1, 200_000);
      await fh.close();

      const check = await runAsync(process.execPath, [BIN, "fsck", "--data", s.dataDir]);
      expect(check.status).toBe(1);
      expect(JSON.parse(check.out).stores[0]).toMatchObject({ badChunks: 1, repaired: 0 });
      const repair = await runAsync(process.execPath, [BIN, "fsck", "--data", s.dataDir, "--repair"]);
      expect(repair.status).toBe(1);
      expect(JSON.parse(repair.out).stores[0].damagedObjects).toHaveLength(1);

      const again = await startTestServer({ gcIntervalSeconds: 0 }, s.dataDir);
      try {
        const res = await client(() => again.url).get(`/v2/images/${img.id}/file`);
        expect(res.status).toBe(503);
        expect(await res.text()).toContain("damaged");
      } finally {
        await again.close();
      }
    } finally {
      await rm(s.dataDir, { recursive: true, force: true });
    }
  });
});
