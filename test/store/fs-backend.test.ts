import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FsBackend } from "../../src/store/fs-backend.js";
import { runBackendConformance } from "./backend-conformance.js";

async function makeFs(durable: boolean) {
  const dir = await mkdtemp(join(tmpdir(), "tessera-fs-"));
  return {
    backend: new FsBackend(dir, { durable }),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}

runBackendConformance("filesystem (durable)", () => makeFs(true));
runBackendConformance("filesystem (no fsync)", () => makeFs(false));

describe("filesystem backend", () => {
  it("leaves no temporary file behind when a put fails", async () => {
    const { backend, dispose } = await makeFs(true);
    const bad = { length: 5, subarray: () => bad } as unknown as Uint8Array; // writev rejects it
    await expect(backend.put("p/q", [bad])).rejects.toThrow();
    expect(await readdir(join(backend.root, "p"))).toEqual([]);
    await dispose();
  });
});
