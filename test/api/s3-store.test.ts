/**
 * The image service on an S3 store, against real S3 servers (s3rver always; radosgw when
 * S3_ENDPOINT is set, as in CI): whole images and ranges round-trip; a server that dies during
 * an upload fails it cleanly (image queued, nothing committed points at a missing pack); one
 * that dies during a download cuts the download off, never sends wrong bytes; the chunk index
 * can be rebuilt from the bucket alone.
 */
import { spawnSync } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { get } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import type { S3StoreConfig } from "../../src/store/open-store.js";
import { S3Backend } from "../../src/store/s3-backend.js";
import { prng, textLike } from "../helpers/data.js";
import { radosgw, type S3rver, startS3rver } from "../helpers/s3.js";
import { client, startTestServer, type TestServer } from "../helpers/server.js";
import { uploadThroughOutage } from "../helpers/store-outage.js";

const MiB = 1024 * 1024;
const BIN = new URL("../../dist/src/cli/main.js", import.meta.url).pathname;
let s3: S3rver;
let n = 0;
beforeAll(async () => {
  s3 = await startS3rver();
});
afterAll(async () => {
  await s3.stop();
});

function s3store(extra: Partial<S3StoreConfig> = {}): S3StoreConfig {
  return { type: "s3", ...s3.options, prefix: `api${n++}/`, attempts: 2, ...extra };
}

async function withServer(store: S3StoreConfig, fn: (s: TestServer) => Promise<void>): Promise<void> {
  const s = await startTestServer({ stores: { central: store }, defaultStore: "central" });
  try {
    await fn(s);
  } finally {
    await s.close();
    await rm(s.dataDir, { recursive: true, force: true });
  }
}

async function roundTrip(store: S3StoreConfig): Promise<void> {
  await withServer(store, async (s) => {
    const api = client(() => s.url);
    // Random and text-like halves: raw and zstd-compressed chunks (compression is on for S3).
    const data = Buffer.concat([Buffer.from(prng(7, 20 * MiB)), textLike(8, 17 * MiB + 11)]);
    const img = await api.createImage({ name: "s3", disk_format: "raw", container_format: "bare" });
    expect((await api.upload(img.id, data)).status).toBe(204);
    const whole = Buffer.from(await (await api.get(`/v2/images/${img.id}/file`)).arrayBuffer());
    const meta = (await (await api.get(`/v2/images/${img.id}`)).json()) as { size: number };
    expect(meta.size).toBe(data.length);
    // The text-like half went into the bucket compressed.
    const bucket = new S3Backend(store);
    let stored = 0;
    for await (const o of bucket.list("packs/")) stored += o.size;
    await bucket.close();
    expect(stored).toBeLessThan(20 * MiB + 10 * MiB);
    expect(whole.equals(data)).toBe(true);
    // Across the boundary between the raw and the compressed half.
    const part = await api.get(`/v2/images/${img.id}/file`, { Range: "bytes=20000000-21999999" });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(data.subarray(20_000_000, 22_000_000))).toBe(true);
  });
}

describe("an S3 store under the API", () => {
  it("round-trips a 37 MiB image and a range of it through s3rver", async () => {
    await roundTrip(s3store());
  });

  it.runIf(process.env.S3_ENDPOINT)(
    "round-trips a 37 MiB image and a range of it through Ceph radosgw",
    async () => {
      const rgw = await radosgw();
      await roundTrip({ type: "s3", ...(rgw as NonNullable<typeof rgw>), attempts: 2 });
    },
  );

  it("fails an upload cleanly when the S3 server dies mid-upload: 503, image queued, no committed pack missing", async () => {
    await uploadThroughOutage(
      s3store(),
      () => s3.kill(),
      () => s3.restart(),
    );
  });

  it("cuts a download off when the S3 server dies under it: the client gets a prefix of the image, never other bytes", async () => {
    await withServer(s3store({ attempts: 1 }), async (s) => {
      const api = client(() => s.url);
      const data = Buffer.from(prng(3, 48 * MiB));
      const img = await api.createImage({ name: "dl", disk_format: "raw", container_format: "bare" });
      expect((await api.upload(img.id, data)).status).toBe(204);
      const got = await new Promise<{ bytes: Buffer; complete: boolean }>((resolve) => {
        get(api.url(`/v2/images/${img.id}/file`), (res) => {
          const parts: Buffer[] = [];
          let killed = false;
          res.on("data", (d: Buffer) => {
            parts.push(d);
            if (!killed) {
              killed = true;
              s3.kill();
              res.pause();
              // Let the server find out before reading on.
              setTimeout(() => res.resume(), 300);
            }
          });
          res.on("end", () => resolve({ bytes: Buffer.concat(parts), complete: res.complete }));
          res.on("error", () => resolve({ bytes: Buffer.concat(parts), complete: false }));
          res.on("aborted", () => {});
        });
      });
      expect(got.complete).toBe(false);
      expect(got.bytes.length).toBeLessThan(data.length);
      expect(got.bytes.equals(data.subarray(0, got.bytes.length))).toBe(true);
      await s3.restart();
      const again = Buffer.from(await (await api.get(`/v2/images/${img.id}/file`)).arrayBuffer());
      expect(again.equals(data)).toBe(true);
    });
  });

  it("rebuilds the catalog from the bucket with `tessera rebuild-index`", async () => {
    const store = s3store();
    let id = "";
    let object = "";
    const data = Buffer.from(prng(4, 21 * MiB));
    const s = await startTestServer({ stores: { central: store }, defaultStore: "central" });
    try {
      const api = client(() => s.url);
      const img = await api.createImage({ name: "rb", disk_format: "raw", container_format: "bare" });
      id = img.id;
      expect((await api.upload(id, data)).status).toBe(204);
    } finally {
      await s.close();
    }
    const engine = await Engine.openDir(s.dataDir, { stores: { central: store }, durable: false });
    object = (engine.catalog.images.get(id) as { object: string }).object;
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
});
