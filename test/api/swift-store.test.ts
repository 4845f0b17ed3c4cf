import { rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StoreConfig, SwiftStoreConfig } from "../../src/store/open-store.js";
import { prng, textLike } from "../helpers/data.js";
import { rebuildFromStoreAlone, uploadThroughOutage } from "../helpers/remote-store.js";
import { client, startTestServer } from "../helpers/server.js";
import { SWIFT_MISSING, type Swift, startSwift } from "../helpers/swift.js";

const MiB = 1024 * 1024;
const _BIN = new URL("../../dist/src/cli/main.js", import.meta.url).pathname;

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
    await rebuildFromStoreAlone(swiftStore(), 11 * MiB);
  });

  it("fails an upload cleanly when Swift stops mid-upload: 503, image queued, no committed pack missing", async () => {
    await uploadThroughOutage(
      swiftStore(),
      () => swift.halt(),
      () => swift.start(),
    );
  });
});
