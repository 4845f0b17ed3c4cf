import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FsBackend } from "../../src/store/fs-backend.js";
import { prng } from "../helpers/data.js";
import { runBackendConformance } from "./backend-conformance.js";

async function makeFs(durable: boolean, directIo = true) {
  const dir = await mkdtemp(join(tmpdir(), "tessera-fs-"));
  return {
    backend: new FsBackend(dir, { durable, directIo }),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}

runBackendConformance("filesystem (durable, direct I/O where the filesystem allows it)", () => makeFs(true));
runBackendConformance("filesystem (no fsync, buffered writes)", () => makeFs(false, false));

// tmpfs refuses O_DIRECT: the backend must notice and fall back to buffered writes.
const tmpfs = existsSync("/dev/shm") ? "/dev/shm" : undefined;
describe.skipIf(!tmpfs)("filesystem backend on tmpfs (O_DIRECT refused)", () => {
  it("falls back to buffered writes and stores objects exactly", async () => {
    const dir = await mkdtemp(join(tmpfs as string, "tessera-fs-"));
    const backend = new FsBackend(dir, { durable: true, directIo: true });
    try {
      const data = Buffer.from(prng(3, 5 * 1024 * 1024 + 1));
      await backend.put("packs/00/x", [data]);
      expect((await backend.get("packs/00/x", 0, data.length)).equals(data)).toBe(true);
    } finally {
      await backend.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("filesystem backend", () => {
  it("writes objects of every length exactly with direct I/O (padding trimmed)", async () => {
    const { backend, dispose } = await makeFs(false, true);
    for (const n of [1, 4095, 4096, 4097, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1, 9 * 1024 * 1024 - 3]) {
      const data = Buffer.from(prng(n, n));
      await backend.put(`o/${n}`, [data.subarray(0, 7), data.subarray(7)]);
      expect((await backend.stat(`o/${n}`))?.size).toBe(n);
      expect((await backend.get(`o/${n}`, 0, n)).equals(data)).toBe(true);
    }
    await backend.close();
    await dispose();
  });

  it("leaves no temporary file behind when a put fails", async () => {
    for (const directIo of [true, false]) {
      const { backend, dispose } = await makeFs(true, directIo);
      // a non-empty directory where the object should go makes the final rename fail
      await mkdir(join(backend.root, "p", "q"), { recursive: true });
      await writeFile(join(backend.root, "p", "q", "x"), "x");
      await expect(backend.put("p/q", [prng(1, 10_000)])).rejects.toThrow();
      expect(await readdir(join(backend.root, "p"))).toEqual(["q"]);
      await backend.close();
      await dispose();
    }
  });
});
