/**
 * Scenarios the remote store tests (S3, Swift) share: the store going away during an upload,
 * and the catalog rebuilt from the store alone with `tessera rebuild-index`.
 */
import { spawnSync } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { expect } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { packName } from "../../src/store/names.js";
import type { StoreConfig } from "../../src/store/open-store.js";
import { chunksOf } from "./catalog.js";
import { prng } from "./data.js";
import { client, startTestServer } from "./server.js";

const MiB = 1024 * 1024;
const BIN = new URL("../../dist/src/cli/main.js", import.meta.url).pathname;

/**
 * A server on `store` (as "central"); an image committed; then an upload during which `stop`
 * takes the store away: the answer must be 503 and the image queued with no data. After
 * `restore`, every pack the committed index points at must be there.
 */
export async function uploadThroughOutage(
  store: StoreConfig,
  stop: () => void | Promise<void>,
  restore: () => Promise<void>,
): Promise<void> {
  const s = await startTestServer({ stores: { central: store }, defaultStore: "central" });
  const api = client(() => s.url);
  try {
    const before = await api.createImage({ name: "before", disk_format: "raw", container_format: "bare" });
    expect((await api.upload(before.id, prng(1, 20 * MiB))).status).toBe(204);
    const img = await api.createImage({ name: "cut", disk_format: "raw", container_format: "bare" });
    const data = Buffer.from(prng(2, 64 * MiB));
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(new URL(api.url(`/v2/images/${img.id}/file`)), {
        method: "PUT",
        headers: { "content-type": "application/octet-stream", "content-length": data.length },
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.write(data.subarray(0, 24 * MiB), () => {
        Promise.resolve(stop()).then(() => req.end(data.subarray(24 * MiB)), reject);
      });
    });
    expect(status).toBe(503);
    const after = (await (await api.get(`/v2/images/${img.id}`)).json()) as Record<string, unknown>;
    expect(after).toMatchObject({ status: "queued", size: null, checksum: null });
  } finally {
    await s.close();
    await restore();
  }
  const engine = await Engine.openDir(s.dataDir, { stores: { central: store }, durable: false });
  try {
    const packs = new Set<string>();
    for (const { rec } of await chunksOf(engine)) packs.add(packName(rec.pack.toString("hex")));
    expect(packs.size).toBeGreaterThan(0);
    for (const name of packs) expect(await engine.store().backend.stat(name), name).toBeDefined();
  } finally {
    await engine.close();
    await rm(s.dataDir, { recursive: true, force: true });
  }
}

/**
 * An image of `size` bytes uploaded into `store` (as "central"), the catalog deleted, then
 * rebuilt from the store alone by the CLI: its manifest is restored and `tessera cat` gives the
 * image's bytes back.
 */
export async function rebuildFromStoreAlone(store: StoreConfig, size: number, seed = 4): Promise<void> {
  const data = Buffer.from(prng(seed, size));
  const s = await startTestServer({ stores: { central: store }, defaultStore: "central" });
  let id = "";
  try {
    const api = client(() => s.url);
    id = (await api.createImage({ name: "rb", disk_format: "raw", container_format: "bare" })).id;
    expect((await api.upload(id, data)).status).toBe(204);
  } finally {
    await s.close();
  }
  try {
    const engine = await Engine.openDir(s.dataDir, { stores: { central: store }, durable: false });
    const object = ((await engine.catalog.records.getImage(id)) as { object: string }).object;
    await engine.close();
    await rm(join(s.dataDir, "catalog"), { recursive: true });
    const cfg = join(s.dataDir, "tessera.json");
    await writeFile(cfg, JSON.stringify({ stores: { central: store }, defaultStore: "central" }));
    const rebuilt = spawnSync(process.execPath, [BIN, "rebuild-index", "--data", s.dataDir, "--config", cfg]);
    expect(rebuilt.status, rebuilt.stderr.toString()).toBe(0);
    expect(JSON.parse(rebuilt.stdout.toString())).toMatchObject({ manifestsRestored: 1, badPacks: [] });
    const cat = spawnSync(process.execPath, [BIN, "cat", object, "--data", s.dataDir, "--config", cfg], {
      maxBuffer: 64 * MiB,
    });
    expect(cat.status, cat.stderr.toString()).toBe(0);
    expect(cat.stdout.equals(data)).toBe(true);
  } finally {
    await rm(s.dataDir, { recursive: true, force: true });
  }
}
