import { rm } from "node:fs/promises";
import { get } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { S3StoreConfig } from "../../src/store/open-store.js";
import { S3Backend } from "../../src/store/s3-backend.js";
import { prng, textLike } from "../helpers/data.js";
import { rebuildFromStoreAlone, uploadThroughOutage } from "../helpers/remote-store.js";
import { radosgw, type S3rver, startS3rver } from "../helpers/s3.js";
import { client, startTestServer, type TestServer } from "../helpers/server.js";

const MiB = 1024 * 1024;
const _BIN = new URL("../../dist/src/cli/main.js", import.meta.url).pathname;
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
    await rebuildFromStoreAlone(s3store(), 21 * MiB);
  });
});
