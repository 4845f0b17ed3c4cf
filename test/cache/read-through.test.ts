/**
 * The read path through the chunk cache, on an engine over a real S3 server (s3rver): a read
 * fills the cache, and a second read (whole or a range) is served from it with the S3 server
 * down; a cached chunk whose bytes went bad is dropped and the read still returns the right
 * bytes; a filesystem store is never cached.
 */
import { mkdtemp, open, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChunkCache } from "../../src/cache/chunk-cache.js";
import { Engine } from "../../src/engine/engine.js";
import { objectCached } from "../../src/engine/read-cache.js";
import type { StoreConfig } from "../../src/store/open-store.js";
import { prng, textLike } from "../helpers/data.js";
import { type S3rver, startS3rver } from "../helpers/s3.js";

const MiB = 1024 * 1024;
let s3: S3rver;
let n = 0;
beforeAll(async () => {
  s3 = await startS3rver();
});
afterAll(async () => {
  await s3.stop();
});

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of it) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

async function* stream(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

/** Waits until every chunk of object `id` is cached (filling runs behind the reads). */
async function allCached(engine: Engine, cache: ChunkCache, id: string): Promise<void> {
  const end = Date.now() + 15_000;
  while (!(await objectCached(engine, cache, id))) {
    if (Date.now() > end) throw new Error(`object ${id} not wholly cached in time`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The first offset where `a` and `b` differ, or -1 when they are equal. */
function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

async function withEngine(
  store: StoreConfig,
  fn: (engine: Engine, cache: ChunkCache, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "tessera-cache-read-"));
  const cache = await ChunkCache.open({ path: join(dir, "cache"), maxBytes: 256 * MiB });
  const engine = await Engine.openDir(dir, { stores: { central: store }, durable: false, chunkCache: cache });
  try {
    await fn(engine, cache, dir);
  } finally {
    await engine.close();
    await cache.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const s3store = (): StoreConfig => ({ type: "s3", ...s3.options, prefix: `rt${n++}/`, attempts: 1 });

// Raw (random) and zstd-compressed (text-like) chunks: S3 stores compress by default.
const image = () => Buffer.concat([Buffer.from(prng(11, 6 * MiB)), textLike(12, 5 * MiB + 123)]);

describe("reads through the chunk cache", () => {
  it("fills the cache on a first read and serves a second read, whole and ranged, with the S3 server down", async () => {
    await withEngine(s3store(), async (engine, cache) => {
      const data = image();
      const { manifestId } = await engine.ingest(stream(data));
      expect(firstDifference(await collect(engine.read(manifestId)), data)).toBe(-1);
      await allCached(engine, cache, manifestId);
      expect(cache.totalBytes()).toBeGreaterThan(0);
      expect(cache.totalBytes()).toBe(data.length); // plain bytes, the text-like half too
      s3.kill();
      try {
        const hitsBefore = cache.counts.hits;
        expect(firstDifference(await collect(engine.read(manifestId)), data)).toBe(-1);
        const part = await collect(engine.read(manifestId, { start: 5 * MiB + 7, end: 7 * MiB }));
        expect(firstDifference(part, data.subarray(5 * MiB + 7, 7 * MiB))).toBe(-1);
        expect(cache.counts.hits).toBeGreaterThan(hitsBefore);
      } finally {
        await s3.restart();
      }
    });
  });

  it("drops a cached chunk whose bytes went bad and still returns the right bytes, from the store", async () => {
    await withEngine(s3store(), async (engine, cache, dir) => {
      const data = image();
      const { manifestId } = await engine.ingest(stream(data));
      await collect(engine.read(manifestId));
      await allCached(engine, cache, manifestId);
      // Damage every cached slab in place, every 64 KiB, keeping its size.
      const slabs = await readdir(join(dir, "cache", "slabs"));
      expect(slabs.length).toBeGreaterThan(0);
      for (const name of slabs) {
        const fh = await open(join(dir, "cache", "slabs", name), "r+");
        const { size } = await fh.stat();
        for (let at = 8; at + 4 <= size; at += 64 * 1024) {
          await fh.write(Buffer.from([0xde, 0xad, 0xbe, 0xef]), 0, 4, at);
        }
        await fh.close();
      }
      expect(firstDifference(await collect(engine.read(manifestId)), data)).toBe(-1);
      expect(cache.counts.dropped).toBeGreaterThan(0);
      // Refilled with good bytes: served from the cache again with the store down.
      await allCached(engine, cache, manifestId);
      s3.kill();
      try {
        expect(firstDifference(await collect(engine.read(manifestId)), data)).toBe(-1);
      } finally {
        await s3.restart();
      }
    });
  });

  it("fills the cache on a copy out of S3, and serves a later copy from it with the S3 server down", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tessera-cache-copy-"));
    const cache = await ChunkCache.open({ path: join(dir, "cache"), maxBytes: 256 * MiB });
    const engine = await Engine.openDir(dir, {
      stores: { central: s3store(), near: { type: "filesystem" }, spare: { type: "filesystem" } },
      defaultStore: "central",
      durable: false,
      chunkCache: cache,
    });
    try {
      const data = image();
      const { manifestId } = await engine.ingest(stream(data));
      expect((await engine.copy(manifestId, "near")).chunksCopied).toBeGreaterThan(0);
      await allCached(engine, cache, manifestId);
      expect(cache.totalBytes()).toBeGreaterThan(0);
      s3.kill();
      try {
        expect((await engine.copy(manifestId, "spare")).chunksCopied).toBeGreaterThan(0);
        expect(cache.counts.hits).toBeGreaterThan(0);
      } finally {
        await s3.restart();
      }
      expect(firstDifference(await collect(engine.read(manifestId)), data)).toBe(-1);
    } finally {
      await engine.close();
      await cache.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("does not cache reads of a filesystem store", async () => {
    await withEngine({ type: "filesystem" }, async (engine, cache) => {
      const data = image();
      const { manifestId } = await engine.ingest(stream(data));
      expect(firstDifference(await collect(engine.read(manifestId)), data)).toBe(-1);
      await new Promise((r) => setTimeout(r, 100));
      expect(cache.totalBytes()).toBe(0);
      expect(cache.counts).toMatchObject({ hits: 0, misses: 0 });
    });
  });
});
