/**
 * GET /v2/images/{id}/file?prefer=store1,store2 (Glance's newest release): the stores to read
 * from first. With an image in two filesystem stores and the first store's packs emptied, a plain
 * download fails (it reads the first store) and one preferring the second store reads it whole;
 * an unknown store in the list is 400.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { client, startTestServer, type TestServer } from "../helpers/server.js";
import { waitFor } from "../helpers/wait.js";

let dir: string;
let s: TestServer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tessera-prefer-"));
  s = await startTestServer({
    stores: {
      local: { type: "filesystem", path: join(dir, "local") },
      extra: { type: "filesystem", path: join(dir, "extra") },
    },
    defaultStore: "local",
    gcIntervalSeconds: 0,
    // No node-local cache of chunk places or bytes stands between the read and the stores.
    locationCacheEntries: 0,
  });
});
afterAll(async () => {
  await s?.close();
  if (s) await rm(s.dataDir, { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });
});

/** Every pack file under a filesystem store's directory. */
async function packFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.parentPath.includes("pack")) out.push(join(e.parentPath, e.name));
  }
  return out;
}

async function body(res: Response): Promise<Buffer | undefined> {
  try {
    return Buffer.from(await res.arrayBuffer());
  } catch {
    return undefined; // cut off after the headers
  }
}

describe("?prefer=", () => {
  it("reads from the preferred store first, and refuses an unknown store with 400", async () => {
    const api = client(() => s.url);
    const data = randomBytes(3 * 1024 * 1024);
    const { id } = await api.createImage({ name: "p", disk_format: "raw", container_format: "bare" });
    expect((await api.upload(id, data)).status).toBe(204);
    const copy = await api.request("POST", `/v2/images/${id}/import`, {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ method: { name: "copy-image" }, stores: ["extra"] }),
    });
    expect(copy.status).toBe(202);
    await waitFor("the copy into extra", async () => {
      const img = (await (await api.get(`/v2/images/${id}`)).json()) as { stores?: string };
      return img.stores === "local,extra" ? img : undefined;
    });

    const local = await packFiles(join(dir, "local"));
    expect(local.length).toBeGreaterThan(0);
    // Emptied in place, not removed: the store may hold them open.
    for (const f of local) await truncate(f, 0);

    const plain = await api.get(`/v2/images/${id}/file`);
    const plainBytes = plain.status === 200 ? await body(plain) : undefined;
    expect(plainBytes?.equals(data) ?? false).toBe(false);

    const preferred = await api.get(`/v2/images/${id}/file?prefer=extra,local`);
    expect(preferred.status).toBe(200);
    expect((await body(preferred))?.equals(data)).toBe(true);

    const unknown = await api.get(`/v2/images/${id}/file?prefer=nowhere`);
    expect(unknown.status).toBe(400);
    expect(await unknown.text()).toContain("Store for identifier nowhere not found");
  });
});
