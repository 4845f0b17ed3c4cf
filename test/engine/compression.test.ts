/**
 * Per-chunk compression: compressible chunks are stored as zstd frames, incompressible ones
 * raw, in the same packs; every read (whole, ranges, pooled) gives back the exact bytes; a
 * damaged frame is detected, never returned; the index rebuilt from the packs keeps the flags.
 */
import { open } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ChunkRecord } from "../../src/catalog/catalog.js";
import { CorruptDataError } from "../../src/errors.js";
import { looksCompressible } from "../../src/store/chunk-codec.js";
import { packName } from "../../src/store/names.js";
import { CHUNK_FLAG_ZSTD } from "../../src/store/pack-format.js";
import { chunksOf, loseIndex } from "../helpers/catalog.js";
import { prng, textLike as text } from "../helpers/data.js";
import { collect, pieces, tempStores } from "../helpers/store.js";

const MiB = 1024 * 1024;
const store = tempStores();

/** Compressible, incompressible and zero stretches in one object. */
function mixed(): Buffer {
  return Buffer.concat([
    text(1, 3 * MiB),
    Buffer.from(prng(2, 2 * MiB)),
    Buffer.alloc(MiB),
    text(3, 2 * MiB + 17),
  ]);
}

async function flagsOf(
  engine: Awaited<ReturnType<typeof store>>["engine"],
): Promise<{ zstd: number; raw: number }> {
  const out = { zstd: 0, raw: 0 };
  for (const { rec } of await chunksOf(engine)) {
    if (rec.flags & CHUNK_FLAG_ZSTD) out.zstd++;
    else out.raw++;
  }
  return out;
}

describe("per-chunk compression", () => {
  it("stores compressible chunks compressed and others raw, and reads every byte back, whole, ranged and pooled", async () => {
    const { engine } = await store({ compression: "zstd" });
    const data = mixed();
    const r = await engine.ingest(pieces(data));
    expect(r.bytesNew + r.zeroBytes + r.bytesDeduplicated).toBe(data.length);
    expect(r.bytesStored).toBeLessThan(r.bytesNew * 0.6);
    const flags = await flagsOf(engine);
    expect(flags.zstd).toBeGreaterThan(0);
    expect(flags.raw).toBeGreaterThan(0);
    expect((await collect(engine.read(r.manifestId))).equals(data)).toBe(true);
    for (const [start, end] of [
      [0, 1],
      [3 * MiB - 5, 3 * MiB + 5],
      [5 * MiB - 100, 6 * MiB + 100],
      [1_234_567, 7_654_321],
      [data.length - 10, data.length],
    ] as const) {
      expect(
        (await collect(engine.read(r.manifestId, { start, end }))).equals(data.subarray(start, end)),
      ).toBe(true);
    }
    const parts: Buffer[] = [];
    for await (const p of engine.readPooled(r.manifestId)) {
      parts.push(Buffer.from(p.bytes));
      p.release();
    }
    expect(Buffer.concat(parts).equals(data)).toBe(true);
  });

  it("stores everything raw with compression off, and a store holding both kinds reads both", async () => {
    const s = await store({ compression: "none" });
    const a = text(4, 2 * MiB);
    const ra = await s.engine.ingest(pieces(a));
    expect(ra.bytesStored).toBe(a.length);
    expect((await flagsOf(s.engine)).zstd).toBe(0);
    await s.engine.close();
    const { Engine } = await import("../../src/engine/engine.js");
    const again = await Engine.openDir(s.dir, { durable: false, packSize: MiB, compression: "zstd" });
    store.defer(() => again.close());
    const b = Buffer.concat([a, text(5, MiB)]);
    const rb = await again.ingest(pieces(b));
    expect((await flagsOf(again)).zstd).toBeGreaterThan(0);
    expect((await collect(again.read(ra.manifestId))).equals(a)).toBe(true);
    expect((await collect(again.read(rb.manifestId))).equals(b)).toBe(true);
  });

  it("detects a damaged compressed chunk instead of returning its bytes", async () => {
    const { engine, dir } = await store({ compression: "zstd" });
    const data = text(6, 2 * MiB);
    const r = await engine.ingest(pieces(data));
    const [victim] = (await chunksOf(engine)).filter(({ rec }) => rec.flags & CHUNK_FLAG_ZSTD);
    const rec = victim?.rec as ChunkRecord;
    const file = join(dir, "objects", packName(rec.pack.toString("hex")));
    const fh = await open(file, "r+");
    const at = rec.offset + Math.floor(rec.length / 2);
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] = (b[0] as number) ^ 0xff;
    await fh.write(b, 0, 1, at);
    await fh.close();
    await expect(collect(engine.read(r.manifestId))).rejects.toBeInstanceOf(CorruptDataError);
  });

  it("keeps the compression flags when the index is rebuilt from the packs", async () => {
    const { engine } = await store({ compression: "zstd" });
    const data = mixed();
    const r = await engine.ingest(pieces(data));
    const before = await flagsOf(engine);
    await loseIndex(engine);
    await engine.rebuildIndex();
    expect(await flagsOf(engine)).toEqual(before);
    expect((await collect(engine.read(r.manifestId))).equals(data)).toBe(true);
  });

  it("sends text to the compressor and spares it random bytes", () => {
    expect(looksCompressible(text(7, 65536))).toBe(true);
    expect(looksCompressible(Buffer.from(prng(8, 65536)))).toBe(false);
    const half = Buffer.concat([Buffer.alloc(32768), Buffer.from(prng(9, 32768))]);
    expect(looksCompressible(half)).toBe(true);
  });
});
