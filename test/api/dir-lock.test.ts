import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DirInUseError } from "../../src/engine/dir-lock.js";
import { startTestServer } from "../helpers/server.js";

describe("one server per data directory", () => {
  it("refuses a second server on the same directory, and takes over a lock left by a dead process", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tessera-lock-"));
    try {
      const first = await startTestServer({}, dir);
      await expect(startTestServer({}, dir)).rejects.toBeInstanceOf(DirInUseError);
      // The refused start left the first one serving.
      expect((await fetch(`${first.url}/v2/images`)).status).toBe(200);
      await first.close();
      // A pid that is no longer running: a crashed server's lock.
      await writeFile(join(dir, "tessera.pid"), "999999999\n");
      const second = await startTestServer({}, dir);
      expect((await fetch(`${second.url}/v2/images`)).status).toBe(200);
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("releases the directory when the server cannot listen", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tessera-lock-"));
    const blocker = await startTestServer();
    try {
      const port = Number(new URL(blocker.url).port);
      await expect(startTestServer({ port }, dir)).rejects.toThrow(/EADDRINUSE/);
      const ok = await startTestServer({}, dir);
      await ok.close();
    } finally {
      await blocker.close();
      await rm(blocker.dataDir, { recursive: true, force: true });
      await rm(dir, { recursive: true, force: true });
    }
  });
});
