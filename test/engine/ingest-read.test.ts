import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DEFAULT_CHUNKER_PARAMS } from "../../src/chunker/params.js";
import { RangeNotSatisfiableError } from "../../src/errors.js";
import { chunkRecord, chunksOf } from "../helpers/catalog.js";
import { prng } from "../helpers/data.js";
import { collect, pieces, tempEngine, tempStores } from "../helpers/store.js";

const { min, avg, max } = DEFAULT_CHUNKER_PARAMS;
const stores = tempStores();
async function store() {
  return (await stores()).engine;
}

describe("ingest and read", () => {
  it.each([0, 1, min - 1, min, avg, max, max + 1, 3 * 1024 * 1024 + 17, 9 * 1024 * 1024 + 5])(
    "round-trips %i bytes byte for byte, with md5 and sha512 of the whole stream",
    async (size) => {
      const engine = await store();
      const data = prng(size + 1, size);
      const r = await engine.ingest(pieces(data, 100_003));
      expect(r.size).toBe(size);
      expect(r.hashes.md5).toBe(createHash("md5").update(data).digest("hex"));
      expect(r.hashes.sha512).toBe(createHash("sha512").update(data).digest("hex"));
      expect((await collect(engine.read(r.manifestId))).equals(Buffer.from(data))).toBe(true);
      expect(await engine.stat(r.manifestId)).toMatchObject({ size, stores: { local: 1 } });
    },
  );

  it("stores nothing new when the same data is ingested twice", async () => {
    const engine = await store();
    const data = prng(7, 5 * 1024 * 1024);
    const a = await engine.ingest(pieces(data));
    const b = await engine.ingest(pieces(data, 77_777));
    expect(a.bytesStored).toBe(data.length);
    expect(b.manifestId).toBe(a.manifestId);
    expect(b.bytesStored).toBe(0);
    expect(b.packsWritten).toBe(0);
    expect(b.bytesDeduplicated).toBe(data.length);
    expect(b.createdObject).toBe(false);
    expect((await engine.stat(a.manifestId)).stores).toEqual({ local: 2 });
  });

  it("shares at least 90% of chunks with the original after one byte is inserted near the front", async () => {
    const engine = await store();
    const data = prng(8, 16 * 1024 * 1024);
    const shifted = Buffer.concat([data.subarray(0, 1000), Buffer.from([42]), data.subarray(1000)]);
    const a = await engine.ingest(pieces(data));
    const b = await engine.ingest(pieces(shifted));
    expect(b.bytesDeduplicated / b.size).toBeGreaterThanOrEqual(0.9);
    expect(b.chunkCount - b.newChunks).toBeGreaterThanOrEqual(0.9 * a.chunkCount);
    expect((await collect(engine.read(b.manifestId))).equals(shifted)).toBe(true);
  });

  it("records all-zero chunks without storing them and synthesizes them on read", async () => {
    const engine = await store();
    const data = Buffer.concat([prng(9, 300_000), Buffer.alloc(4 * 1024 * 1024), prng(10, 300_000)]);
    const r = await engine.ingest(pieces(data));
    expect(r.zeroChunks).toBeGreaterThanOrEqual(14);
    expect(r.bytesStored).toBeLessThan(data.length - 3.5 * 1024 * 1024);
    expect((await collect(engine.read(r.manifestId))).equals(data)).toBe(true);
  });

  it("deduplicates chunks repeated within one stream", async () => {
    const engine = await store();
    const block = prng(11, 2 * 1024 * 1024);
    const r = await engine.ingest(pieces(Buffer.concat([block, block, block])));
    expect(r.bytesStored).toBeLessThan(2.5 * 1024 * 1024);
  });

  it("reads ranges at, before and across chunk and pack boundaries", async () => {
    const engine = await store(); // 1 MiB packs: a 6 MiB object spans several
    const data = Buffer.from(prng(12, 6 * 1024 * 1024 + 99));
    const r = await engine.ingest(pieces(data));
    const m = await (await import("../../src/engine/read.js")).loadManifest(
      engine,
      Buffer.from(r.manifestId, "hex"),
    );
    const cuts = Array.from(m.offsets);
    const points = new Set<number>([0, 1, data.length - 1, data.length]);
    for (const c of cuts) for (const d of [-1, 0, 1]) points.add(Math.min(data.length, Math.max(0, c + d)));
    const sorted = [...points].sort((a, b) => a - b);
    let checked = 0;
    for (let i = 0; i < sorted.length; i += 3) {
      for (const width of [0, 1, 2, avg, 3 * max]) {
        const start = sorted[i];
        const end = Math.min(data.length, start + width);
        const got = await collect(engine.read(r.manifestId, { start, end }));
        expect(got.equals(data.subarray(start, end))).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(50);
    // across every pack boundary at once: the whole middle
    const mid = await collect(engine.read(r.manifestId, { start: 1, end: data.length - 1 }));
    expect(mid.equals(data.subarray(1, data.length - 1))).toBe(true);
  });

  it("reads the same bytes through pooled buffers that are released and reused between reads", async () => {
    const engine = await tempEngine({ readSegmentBytes: 256 * 1024, readAheadBytes: 1024 * 1024 });
    try {
      const a = Buffer.from(prng(13, 5 * 1024 * 1024 + 7));
      const b = Buffer.concat([Buffer.alloc(300_000), Buffer.from(prng(14, 2 * 1024 * 1024))]);
      const ra = await engine.engine.ingest(pieces(a));
      const rb = await engine.engine.ingest(pieces(b));
      const seen = new Set<ArrayBufferLike>();
      for (const [r, data, range] of [
        [ra, a, {}],
        [rb, b, {}],
        [ra, a, { start: 12_345, end: 4_000_000 }],
        [rb, b, { start: 299_999 }],
        [ra, a, {}],
      ] as const) {
        const parts: Buffer[] = [];
        for await (const piece of engine.engine.readPooled(r.manifestId, range)) {
          parts.push(Buffer.from(piece.bytes)); // a copy: the buffer goes back to the pool
          seen.add(piece.bytes.buffer);
          piece.release();
        }
        const start = "start" in range ? range.start : 0;
        const end = "end" in range ? range.end : data.length;
        expect(Buffer.concat(parts).equals(data.subarray(start, end))).toBe(true);
      }
      // ~40 segments were read through a pool that keeps 8 buffers: they were reused.
      expect(seen.size).toBeLessThan(20);
    } finally {
      await engine.cleanup();
    }
  });

  it("refuses a range outside the object", async () => {
    const engine = await store();
    const r = await engine.ingest(pieces(prng(13, 1000)));
    await expect(collect(engine.read(r.manifestId, { start: 10, end: 1001 }))).rejects.toBeInstanceOf(
      RangeNotSatisfiableError,
    );
    await expect(collect(engine.read(r.manifestId, { start: 5, end: 4 }))).rejects.toBeInstanceOf(
      RangeNotSatisfiableError,
    );
  });

  it("lets two concurrent ingests of overlapping data both succeed and read back", async () => {
    const engine = await store();
    const shared = prng(14, 4 * 1024 * 1024);
    const a = Buffer.concat([prng(15, 1024 * 1024), shared]);
    const b = Buffer.concat([shared, prng(16, 1024 * 1024)]);
    const [ra, rb, rc] = await Promise.all([
      engine.ingest(pieces(a, 64 * 1024)),
      engine.ingest(pieces(b, 64 * 1024)),
      engine.ingest(pieces(a, 100_000)),
    ]);
    expect((await collect(engine.read(ra.manifestId))).equals(a)).toBe(true);
    expect((await collect(engine.read(rb.manifestId))).equals(b)).toBe(true);
    expect(rc.manifestId).toBe(ra.manifestId);
    expect((await engine.stat(ra.manifestId)).stores).toEqual({ local: 2 });
  });

  it("releases an object: its chunks lose their reference but stay readable until GC", async () => {
    const engine = await store();
    const data = prng(17, 1024 * 1024);
    const r = await engine.ingest(pieces(data));
    const someChunk = (await chunksOf(engine))[0]?.id as Buffer;
    expect((await chunkRecord(engine, someChunk))?.refs).toBe(1);
    expect(await engine.release(r.manifestId)).toEqual({ removed: true });
    expect((await chunkRecord(engine, someChunk))?.refs).toBe(0);
    await expect(engine.stat(r.manifestId)).rejects.toThrow(/not found/);
  });
});

describe("ingest input shapes", () => {
  it("accepts one huge piece and stores it in several packs", async () => {
    const s = await stores();
    {
      const data = prng(60, 5 * 1024 * 1024 + 3);
      const r = await s.engine.ingest(
        (async function* () {
          yield data;
        })(),
      );
      expect(r.packsWritten).toBeGreaterThanOrEqual(5);
      expect((await collect(s.engine.read(r.manifestId))).equals(Buffer.from(data))).toBe(true);
    }
  });

  it("refuses a pack size too small for the chunker's largest chunk", async () => {
    await expect(
      tempEngine({ chunker: { min: 1 << 20, avg: 4 << 20, max: 16 << 20 }, packSize: 8 << 20 }),
    ).rejects.toThrow(RangeError);
  });
});

describe("write-through ingest", () => {
  it("writes chunks the store holds again, reads back whole, and the copies go at the next collection", async () => {
    const { engine } = await stores();
    const data = Buffer.from(prng(31, 4 * 1024 * 1024));
    const a = await engine.ingest(pieces(data));
    const b = await engine.ingest(pieces(data), { writeThrough: true });
    expect(b.manifestId).toBe(a.manifestId);
    expect(b.bytesDeduplicated).toBe(0);
    expect(b.bytesNew).toBe(data.length);
    expect((await collect(engine.read(b.manifestId))).equals(data)).toBe(true);
    const gc = await engine.gc({ graceSeconds: 0 });
    expect(gc.stores[0]?.objectsDeleted).toBeGreaterThan(0);
    expect((await collect(engine.read(b.manifestId))).equals(data)).toBe(true);
    expect((await engine.stat(b.manifestId)).stores).toEqual({ local: 2 });
  });
});
