import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ReadHandles } from "../../src/store/read-handles.js";

describe("read handle cache", () => {
  it("keeps at most `max` handles, reuses them, and reports a missing file each time", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tessera-rh-"));
    try {
      const cache = new ReadHandles(2);
      const paths = [0, 1, 2].map((i) => join(dir, `f${i}`));
      for (const [i, p] of paths.entries()) await writeFile(p, `file ${i}`);
      const fds = new Map<string, number>();
      for (const p of [...paths, paths[2], paths[2]]) {
        await cache.use(p, async (fh) => {
          if (fds.has(p)) expect(fh.fd).toBe(fds.get(p));
          fds.set(p, fh.fd);
          const { buffer } = await fh.read(Buffer.alloc(6), 0, 6, 0);
          expect(buffer.toString()).toBe(`file ${paths.indexOf(p)}`);
        });
      }
      await expect(cache.use(join(dir, "missing"), async () => 1)).rejects.toMatchObject({ code: "ENOENT" });
      await writeFile(join(dir, "missing"), "now here");
      expect(await cache.use(join(dir, "missing"), async () => 1)).toBe(1);
      await cache.closeAll();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
