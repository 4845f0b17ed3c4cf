/**
 * A Swift store beside a filesystem store under the API, against a real Swift: upload into
 * Swift, copy to the filesystem moving only the chunks it lacks, download from either; the
 * catalog rebuilt from the Swift container with `tessera rebuild-index`; and Swift stopped
 * mid-upload: 503, image queued, nothing committed that points at a missing pack.
 */
import { spawnSync } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import type { StoreConfig, SwiftStoreConfig } from "../../src/store/open-store.js";
import { prng, textLike } from "../helpers/data.js";
import { client, startTestServer } from "../helpers/server.js";
import { uploadThroughOutage } from "../helpers/store-outage.js";
import { SWIFT_MISSING, type Swift, startSwift } from "../helpers/swift.js";

const MiB = 1024 * 1024;
const BIN = new URL("../../dist/src/cli/main.js", import.meta.url).pathname;

describe.skipIf(SWIFT_MISSING)("a Swift store under the API", () => {
  let swift: Swift;
  let n = 0;
  beforeAll(async () => {
    swift = await startSwift();
  }, 120_000);
  afterAll(async () => {
    await swift?.stop();
  });

  const swiftStore = (): SwiftStoreConfig => ({
    type: "swift",
    authUrl: swift.authUrl,
    user: swift.user,
    key: swift.key,
    container: "tessera",
    prefix: `api${n++}/`,
    // Packs above 4 MiB go up as static large objects: both paths run.
    segmentSize: 4 * MiB,
    attempts: 2,
  });
  const stores = (sw: SwiftStoreConfig): Record<string, StoreConfig> => ({
    swift: sw,
    local: { type: "filesystem" },
  });

  it("uploads into Swift, copies to the filesystem moving only what it lacks, and downloads from either", async () => {
    const s = await startTestServer({ stores: stores(swiftStore()), defaultStore: "swift" });
    const api = client(() => s.url);
    try {
      const base = Buffer.concat([Buffer.from(prng(1, 12 * MiB)), textLike(2, 9 * MiB)]);
      const img = await api.createImage({ name: "sw", disk_format: "raw", container_format: "bare" });
      expect((await api.upload(img.id, base)).status).toBe(204);
      const got = Buffer.from(await (await api.get(`/v2/images/${img.id}/file`)).arrayBuffer());
      expect(got.equals(base)).toBe(true);
      const first = await s.images.copyToStore(img.id, "local");
      expect(first.copy?.chunksCopied).toBeGreaterThan(0);
      // A second image sharing most of the first: its copy moves only its own chunks.
      const derived = Buffer.concat([base, Buffer.from(prng(3, MiB))]);
      const img2 = await api.createImage({ name: "sw2", disk_format: "raw", container_format: "bare" });
      expect((await api.upload(img2.id, derived)).status).toBe(204);
      const second = await s.images.copyToStore(img2.id, "local");
      expect(second.copy?.bytesPlain).toBeLessThan(2 * MiB);
      // Served by the filesystem alone once Swift's copy is gone, and by Swift alone the other way.
      expect((await api.request("DELETE", `/v2/stores/swift/${img.id}`)).status).toBe(204);
      const fromLocal = Buffer.from(await (await api.get(`/v2/images/${img.id}/file`)).arrayBuffer());
      expect(fromLocal.equals(base)).toBe(true);
      expect((await api.request("DELETE", `/v2/stores/local/${img2.id}`)).status).toBe(204);
      const fromSwift = Buffer.from(await (await api.get(`/v2/images/${img2.id}/file`)).arrayBuffer());
      expect(fromSwift.equals(derived)).toBe(true);
      const detail = (await (await api.get("/v2/info/stores/detail")).json()) as {
        stores: { id: string; type: string }[];
      };
      expect(detail.stores.find((x) => x.id === "swift")?.type).toBe("swift");
    } finally {
      await s.close();
      await rm(s.dataDir, { recursive: true, force: true });
    }
  });

  it("rebuilds the catalog from the Swift container with `tessera rebuild-index`", async () => {
    const store = swiftStore();
    const data = Buffer.from(prng(4, 11 * MiB));
    const s = await startTestServer({ stores: { central: store }, defaultStore: "central" });
    let id = "";
    try {
      const api = client(() => s.url);
      id = (await api.createImage({ name: "rb", disk_format: "raw", container_format: "bare" })).id;
      expect((await api.upload(id, data)).status).toBe(204);
    } finally {
      await s.close();
    }
    const engine = await Engine.openDir(s.dataDir, { stores: { central: store }, durable: false });
    const object = (engine.catalog.images.get(id) as { object: string }).object;
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
    await rm(s.dataDir, { recursive: true, force: true });
  });

  it("fails an upload cleanly when Swift stops mid-upload: 503, image queued, no committed pack missing", async () => {
    await uploadThroughOutage(
      swiftStore(),
      () => swift.halt(),
      () => swift.start(),
    );
  });
});
