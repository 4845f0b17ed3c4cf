/**
 * Moving stored chunks between packs (a copy to another store, a repack within one): runs of
 * chunks stored back to back in one pack, read with one ranged read, checked against their ids,
 * and appended to a pack writer as they are stored (a raw chunk compressed on the way when the
 * target compresses and it shrinks).
 */
import type { ChunkRecord } from "../catalog/store-index.js";
import { CorruptDataError, NotFoundError } from "../errors.js";
import { chunkSum } from "../hash/chunk-sum.js";
import { looksCompressible } from "../store/chunk-codec.js";
import { packName } from "../store/names.js";
import { CHUNK_FLAG_ZSTD, CHUNK_FLAGS_NONE } from "../store/pack-format.js";
import type { ChunkLocation, PackWriter } from "../store/pack-writer.js";
import type { Engine } from "./engine.js";
import type { Store } from "./stores.js";

export interface RunChunk {
  id: Buffer;
  hex: string;
  stored: number;
  /** The chunk's own length, when known (from a manifest). */
  plain?: number;
  /** Its fast checksum, when its record has one (RunBuilder.add takes it from there). */
  sum?: bigint;
}

/** Chunks stored back to back in one pack of one store, all compressed or all raw. */
export interface ChunkRun {
  source: Store;
  pack: string;
  offset: number;
  stored: number;
  compressed: boolean;
  chunks: RunChunk[];
}

/** Groups chunks, in the order given, into runs of at most `max` stored bytes. */
export class RunBuilder {
  private run: ChunkRun | undefined;

  constructor(private readonly max: number) {}

  /** Adds a chunk stored at `rec` in `source`; returns the run this closed, if any. */
  add(source: Store, rec: ChunkRecord, chunk: RunChunk): ChunkRun | undefined {
    if (rec.sum !== undefined) chunk.sum = rec.sum;
    const pack = packName(rec.pack.toString("hex"));
    const compressed = (rec.flags & CHUNK_FLAG_ZSTD) !== 0;
    const run = this.run;
    if (
      run &&
      run.source === source &&
      run.pack === pack &&
      run.compressed === compressed &&
      run.offset + run.stored === rec.offset &&
      run.stored + rec.length <= this.max
    ) {
      run.stored += rec.length;
      run.chunks.push(chunk);
      return undefined;
    }
    this.run = { source, pack, offset: rec.offset, stored: rec.length, compressed, chunks: [chunk] };
    return run;
  }

  finish(): ChunkRun | undefined {
    const run = this.run;
    this.run = undefined;
    return run;
  }
}

/** The runs of index entries of one store, taken in the order given (sort by pack and offset). */
export function runsOf(
  engine: Engine,
  store: Store,
  entries: readonly { id: Buffer; rec: ChunkRecord }[],
): ChunkRun[] {
  const builder = new RunBuilder(engine.readSegmentBytes);
  const runs: ChunkRun[] = [];
  for (const e of entries) {
    const closed = builder.add(store, e.rec, { id: e.id, hex: e.id.toString("hex"), stored: e.rec.length });
    if (closed) runs.push(closed);
  }
  const last = builder.finish();
  if (last) runs.push(last);
  return runs;
}

/**
 * A run's stored bytes, each chunk checked against its id (compressed ones by decoding them)
 * and, raw ones, against the sum in its record.
 */
export async function readRun(engine: Engine, run: ChunkRun): Promise<{ run: ChunkRun; data: Buffer }> {
  const data = await run.source.backend.get(run.pack, run.offset, run.stored);
  if (run.compressed) {
    await engine.codec.verifyFrames(data, run.chunks);
    return { run, data };
  }
  let at = 0;
  const spans = run.chunks.map((c) => {
    const s = { offset: at, length: c.stored, id: c.id };
    at += c.stored;
    return s;
  });
  const checked = await engine.verifier.verify(data, spans);
  // The bytes match their ids; a sum that does not match them is a wrong record, which would
  // fail every fast read of the chunk: caught here, by scrub, and not carried into a copy.
  run.chunks.forEach((c, i) => {
    const s = spans[i] as (typeof spans)[number];
    if (c.sum !== undefined && chunkSum(checked.subarray(s.offset, s.offset + s.length)) !== c.sum) {
      throw new CorruptDataError(`chunk ${c.hex} does not match the checksum in its record`);
    }
  });
  return { run, data: checked };
}

/**
 * One chunk stored at `rec` in `source`, read and checked; undefined when its bytes are bad or
 * its pack is gone.
 */
export async function readOne(
  engine: Engine,
  source: Store,
  rec: ChunkRecord,
  chunk: RunChunk,
): Promise<{ run: ChunkRun; data: Buffer } | undefined> {
  const builder = new RunBuilder(engine.readSegmentBytes);
  builder.add(source, rec, chunk);
  try {
    return await readRun(engine, builder.finish() as ChunkRun);
  } catch (e) {
    if (e instanceof CorruptDataError || e instanceof NotFoundError) return undefined;
    throw e;
  }
}

/** Appends a run's chunks to `packs` (a pack writer of `target`), recording where each went. */
export async function writeRun(
  engine: Engine,
  target: Store,
  run: ChunkRun,
  data: Buffer,
  packs: PackWriter,
  written: Map<string, ChunkLocation>,
): Promise<void> {
  const frames: Buffer[] = [];
  let at = 0;
  for (const c of run.chunks) {
    frames.push(data.subarray(at, at + c.stored));
    at += c.stored;
  }
  // Compressed frames move as they are; raw ones are squeezed if the target compresses.
  const squeeze = frames.map((f) => !run.compressed && target.compression && looksCompressible(f));
  const encoded = await engine.codec.compress(frames.filter((_, i) => squeeze[i]));
  let k = 0;
  for (let i = 0; i < frames.length; i++) {
    const c = run.chunks[i] as RunChunk;
    const e = squeeze[i] ? encoded[k++] : undefined;
    const flags = run.compressed ? CHUNK_FLAG_ZSTD : (e?.flags ?? CHUNK_FLAGS_NONE);
    // A raw chunk without a sum (stored before there were sums) gets one: readRun checked it.
    const sum = c.sum ?? (run.compressed ? undefined : chunkSum(frames[i] as Buffer));
    written.set(c.hex, packs.add(c.id, e?.data ?? (frames[i] as Buffer), flags, sum));
  }
}
