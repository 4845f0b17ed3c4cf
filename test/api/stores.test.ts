/**
 * Glance's multi-store API over real HTTP, on a server with a filesystem store and an S3 one
 * (s3rver): the stores' listing, uploads into a named store, the `stores` property, copies
 * that move only the chunks a store lacks, removal from one store, and downloads that keep
 * working from whichever store is left.
 */
import { spawnSync } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { ImageService } from "../../src/images/images.js";
import type { StoreConfig } from "../../src/store/open-store.js";
import { prng } from "../helpers/data.js";
import { type S3rver, startS3rver } from "../helpers/s3.js";
import { client, startTestServer, type TestServer } from "../helpers/server.js";

const MiB = 1024 * 1024;
const BIN = new URL("../../dist/src/cli/main.js", import.meta.url).pathname;

let s3: S3rver;
let stores: Record<string, StoreConfig>;
beforeAll(async () => {
  s3 = await startS3rver();
  stores = {
    local: { type: "filesystem", description: "fast local disk" },
    central: {
      type: "s3",
      ...s3.options,
      prefix: "multi/",
      description: "central object store",
    },
  };
});
afterAll(async () => {
  await s3.stop();
});

async function withServer(fn: (s: TestServer, api: ReturnType<typeof client>) => Promise<void>) {
  const s = await startTestServer({ stores, defaultStore: "local" });
  try {
    await fn(
      s,
      client(() => s.url),
    );
  } finally {
    await s.close();
    await rm(s.dataDir, { recursive: true, force: true });
  }
}

async function show(api: ReturnType<typeof client>, id: string): Promise<Record<string, unknown>> {
  return (await (await api.get(`/v2/images/${id}`)).json()) as Record<string, unknown>;
}

async function download(api: ReturnType<typeof client>, id: string): Promise<Buffer> {
  const res = await api.get(`/v2/images/${id}/file`);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe("several stores under the API", () => {
  it("lists the stores as Glance does, the default marked, and the detail without credentials", async () => {
    await withServer(async (_s, api) => {
      expect(await (await api.get("/v2/info/stores")).json()).toEqual({
        stores: [
          { id: "local", description: "fast local disk", default: "true" },
          { id: "central", description: "central object store" },
        ],
      });
      const detail = (await (await api.get("/v2/info/stores/detail")).json()) as {
        stores: { id: string; type: string; properties: Record<string, unknown> }[];
      };
      expect(detail.stores.map((x) => [x.id, x.type])).toEqual([
        ["local", "file"],
        ["central", "s3"],
      ]);
      expect(detail.stores[1]?.properties).toMatchObject({ bucket: s3.options.bucket, prefix: "multi/" });
      const text = JSON.stringify(detail);
      expect(text).not.toContain(s3.options.secretAccessKey as string);
      expect(text).not.toContain(s3.options.accessKeyId as string);
      const created = await api.request("POST", "/v2/images", {
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "x" }),
      });
      expect(created.headers.get("openstack-image-store-ids")).toBe("local,central");
    });
  });

  it("uploads into the store X-Image-Meta-Store names, and refuses an unknown one with 400, the image still queued", async () => {
    await withServer(async (_s, api) => {
      const img = await api.createImage({ name: "c", disk_format: "raw", container_format: "bare" });
      expect((await show(api, img.id)).stores).toBeUndefined();
      const data = Buffer.from(prng(1, 3 * MiB));
      const bad = await api.request("PUT", `/v2/images/${img.id}/file`, {
        headers: { "content-type": "application/octet-stream", "x-image-meta-store": "nowhere" },
        body: new Uint8Array(data),
      });
      expect(bad.status).toBe(400);
      expect(await bad.text()).toContain("Store for identifier nowhere not found");
      expect((await show(api, img.id)).status).toBe("queued");
      const ok = await api.request("PUT", `/v2/images/${img.id}/file`, {
        headers: { "content-type": "application/octet-stream", "x-image-meta-store": "central" },
        body: new Uint8Array(data),
      });
      expect(ok.status).toBe(204);
      expect(await show(api, img.id)).toMatchObject({ status: "active", stores: "central" });
      expect((await download(api, img.id)).equals(data)).toBe(true);
      // Without the header: the default store.
      const other = await api.createImage({ name: "d", disk_format: "raw", container_format: "bare" });
      expect((await api.upload(other.id, data)).status).toBe(204);
      expect((await show(api, other.id)).stores).toBe("local");
    });
  });

  it("copies images into another store with `tessera copy-image`, moving only the chunks it lacks", async () => {
    const base = Buffer.from(prng(2, 6 * MiB));
    const derived = Buffer.from(base);
    derived.set(prng(5, 64 * 1024), 3 * MiB);
    const ids: string[] = [];
    await withServer(async (s, api) => {
      for (const data of [base, derived]) {
        const img = await api.createImage({ name: "m", disk_format: "raw", container_format: "bare" });
        expect((await api.upload(img.id, data)).status).toBe(204);
        ids.push(img.id);
      }
      await s.close(); // one process per data directory
      const cfg = join(s.dataDir, "tessera.json");
      await writeFile(cfg, JSON.stringify({ stores, defaultStore: "local" }));
      const copy = (id: string) => {
        const r = spawnSync(process.execPath, [
          BIN,
          "copy-image",
          id,
          "--to",
          "central",
          "--data",
          s.dataDir,
          "--config",
          cfg,
        ]);
        expect(r.status, r.stderr.toString()).toBe(0);
        return JSON.parse(r.stdout.toString()) as {
          image: { stores: string[] };
          copy: { bytesMoved: number };
        };
      };
      const first = copy(ids[0] as string);
      expect(first.image.stores).toEqual(["local", "central"]);
      expect(first.copy.bytesMoved).toBeGreaterThan(5 * MiB);
      const second = copy(ids[1] as string);
      expect(second.copy.bytesMoved).toBeLessThan(MiB);
      expect(second.copy.bytesMoved).toBeGreaterThanOrEqual(64 * 1024);

      const again = await startTestServer({ stores, defaultStore: "local" }, s.dataDir);
      try {
        const api2 = client(() => again.url);
        for (const [i, data] of [base, derived].entries()) {
          const id = ids[i] as string;
          expect((await show(api2, id)).stores).toBe("local,central");
          expect((await api2.request("DELETE", `/v2/stores/local/${id}`)).status).toBe(204);
          expect((await download(api2, id)).equals(data)).toBe(true);
        }
      } finally {
        await again.close();
      }
    });
  });
});

describe("removal from one store", () => {
  it("answers as Glance: 204, then 403 for the last store, 409 for an unknown store, 404 for an unknown image", async () => {
    const s = await startTestServer({ stores, defaultStore: "local" });
    try {
      const api = client(() => s.url);
      const data = Buffer.concat([Buffer.from(prng(3, 5 * MiB)), Buffer.alloc(MiB)]);
      const img = await api.createImage({ name: "r", disk_format: "raw", container_format: "bare" });
      expect((await api.upload(img.id, data)).status).toBe(204);
      // The copy itself through the image service (the import issue's copy-image will call it live).
      await s.close();
      const engine = await Engine.openDir(s.dataDir, { stores, durable: false });
      const images = await ImageService.open(engine);
      const copied = await images.copyToStore(img.id, "central");
      expect(copied.image.stores).toEqual(["local", "central"]);
      await engine.close();

      const again = await startTestServer({ stores, defaultStore: "local" }, s.dataDir);
      try {
        const api2 = client(() => again.url);
        expect((await show(api2, img.id)).stores).toBe("local,central");
        const unknown = await api2.request("DELETE", `/v2/stores/nowhere/${img.id}`);
        expect(unknown.status).toBe(409);
        expect(await unknown.text()).toContain("The selected store nowhere is not available on this node.");
        expect((await api2.request("DELETE", "/v2/stores/local/no-such-image")).status).toBe(404);
        expect((await api2.request("DELETE", `/v2/stores/local/${img.id}`)).status).toBe(204);
        expect((await show(api2, img.id)).stores).toBe("central");
        // Served from the S3 store alone now.
        expect((await download(api2, img.id)).equals(data)).toBe(true);
        const last = await api2.request("DELETE", `/v2/stores/central/${img.id}`);
        expect(last.status).toBe(403);
        expect(await last.text()).toContain("Cannot delete image data from the only store containing it");
        expect((await api2.request("GET", `/v2/stores/central/${img.id}`)).status).toBe(405);
        // Deleting the image releases it from the store it is in.
        expect((await api2.request("DELETE", `/v2/images/${img.id}`)).status).toBe(204);
      } finally {
        await again.close();
      }
      const after = await Engine.openDir(s.dataDir, { stores, durable: false });
      try {
        const objects: Buffer[] = [];
        for await (const { id } of after.catalog.scanObjects()) objects.push(id);
        expect(objects).toEqual([]);
      } finally {
        await after.close();
      }
    } finally {
      await rm(s.dataDir, { recursive: true, force: true });
    }
  });
});
