/**
 * Copy: puts an object into another store, moving only the chunks that store lacks. A derived
 * image copied to a store that holds its base moves the chunks that differ, not the image.
 *
 * Chunks move as stored: a compressed frame is written as it was read (after checking that it
 * decodes to its id), a raw one is compressed on the way if the target compresses and it
 * shrinks. Write order as for an ingest: packs (the last carrying the manifest) durable →
 * catalog commit, where the object gains a holder in the target; until then the target's
 * index is unchanged.
 */
import { chunkIdOf, distinctChunkIds } from "../catalog/manifest.js";
import { encodeManifestObject } from "../catalog/manifest-object.js";
import type { ChunkRecord } from "../catalog/store-index.js";
import { CorruptDataError, NotFoundError } from "../errors.js";
import { looksCompressible } from "../store/chunk-codec.js";
import { manifestName, packName } from "../store/names.js";
import { CHUNK_FLAG_ZSTD, CHUNK_FLAGS_NONE } from "../store/pack-format.js";
import { type ChunkLocation, PackWriter } from "../store/pack-writer.js";
import type { Engine } from "./engine.js";
import type { ActiveWrite } from "./gc.js";
import { putManifest } from "./ingest.js";
import { loadManifest } from "./read.js";
import type { Store } from "./stores.js";

export interface CopyOptions {
  /** Runs inside the commit's transaction; throwing aborts the copy (nothing is indexed). */
  inCommit?: () => void;
}

export interface CopyResult {
  /** Distinct chunks the target lacked and got. */
  chunksCopied: number;
  /** Bytes read from the other stores and written to the target, as stored (compressed or not). */
  bytesMoved: number;
  /** Plain bytes of the chunks copied. */
  bytesPlain: number;
  packsWritten: number;
}

/** Chunks stored back to back in one pack of one source store, all compressed or all raw. */
interface Run {
  source: Store;
  pack: string;
  offset: number;
  stored: number;
  compressed: boolean;
  chunks: { id: Buffer; hex: string; stored: number; plain: number }[];
}

/** Runs of reads in flight at once. */
const RUNS_IN_FLIGHT = 8;

export async function copyObject(
  engine: Engine,
  id: Buffer,
  target: Store,
  options: CopyOptions,
): Promise<CopyResult> {
  const m = loadManifest(engine, id);
  const runs = planRuns(engine, m, target);
  const packs = new PackWriter(target.backend, { packSize: target.packSize, buffers: target.packBuffers });
  const written = new Map<string, ChunkLocation>();
  const result: CopyResult = { chunksCopied: 0, bytesMoved: 0, bytesPlain: 0, packsWritten: 0 };
  const inFlight: Promise<{ run: Run; data: Buffer }>[] = [];
  // Garbage collection spares every chunk of the object in the target (those found there are
  // referenced at the commit) and what this copy writes.
  const manifestObject = manifestName(id.toString("hex"));
  const active: ActiveWrite = {
    store: target.name,
    pinned: () => distinctChunkIds(m).values(),
    objects: () => [...packs.names(), manifestObject],
  };
  engine.activeWrites.add(active);
  try {
    for (;;) {
      while (inFlight.length < RUNS_IN_FLIGHT) {
        const next = runs.next();
        if (next.done) break;
        const p = readRun(engine, next.value);
        p.catch(() => {});
        inFlight.push(p);
      }
      const item = inFlight.shift();
      if (!item) break;
      const { run, data } = await item;
      await writeRun(engine, target, run, data, packs, written);
      for (const c of run.chunks) result.bytesPlain += c.plain;
      result.bytesMoved += run.stored;
      await packs.drain();
    }
    const obj = engine.catalog.getObject(id);
    if (!obj) throw new NotFoundError(`object ${id.toString("hex")} (released during the copy)`);
    const { size, chunkCount, hashes } = obj;
    const manifest = engine.catalog.getManifest(id) as Buffer;
    await putManifest(target, packs, id, encodeManifestObject(manifest, { size, chunkCount, hashes }));
    const packList = await packs.finish();
    await engine.catalog.commitCopy(target.name, id, {
      written,
      packs: packList,
      alsoInTransaction: options.inCommit,
    });
    result.chunksCopied = written.size;
    result.packsWritten = packList.length;
    return result;
  } catch (e) {
    await Promise.allSettled(inFlight);
    await packs.abort();
    throw e;
  } finally {
    engine.activeWrites.delete(active);
  }
}

/** The distinct chunks of `m` that `target` lacks, grouped into runs of their source packs. */
function* planRuns(engine: Engine, m: ReturnType<typeof loadManifest>, target: Store): Generator<Run> {
  const seen = new Set<string>();
  let run: Run | undefined;
  for (let i = 0; i < m.count; i++) {
    const id = chunkIdOf(m, i);
    if (!id || target.index.hasChunk(id)) continue;
    const hex = id.toString("hex");
    if (seen.has(hex)) continue;
    seen.add(hex);
    let rec: ChunkRecord | undefined;
    let source: Store | undefined;
    for (const s of engine.stores.values()) {
      if (s === target) continue;
      rec = s.index.getChunk(id);
      source = s;
      if (rec) break;
    }
    if (!rec || !source) throw new CorruptDataError(`chunk ${hex} is in no store's index`);
    const pack = packName(rec.pack.toString("hex"));
    const compressed = (rec.flags & CHUNK_FLAG_ZSTD) !== 0;
    const chunk = { id, hex, stored: rec.length, plain: m.lengths[i] as number };
    if (
      run &&
      run.source === source &&
      run.pack === pack &&
      run.compressed === compressed &&
      run.offset + run.stored === rec.offset &&
      run.stored + rec.length <= engine.readSegmentBytes
    ) {
      run.stored += rec.length;
      run.chunks.push(chunk);
      continue;
    }
    if (run) yield run;
    run = { source, pack, offset: rec.offset, stored: rec.length, compressed, chunks: [chunk] };
  }
  if (run) yield run;
}

/** A run's stored bytes, each chunk checked against its id (compressed ones by decoding them). */
async function readRun(engine: Engine, run: Run): Promise<{ run: Run; data: Buffer }> {
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
  return { run, data: await engine.verifier.verify(data, spans) };
}

async function writeRun(
  engine: Engine,
  target: Store,
  run: Run,
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
    const c = run.chunks[i] as Run["chunks"][number];
    const e = squeeze[i] ? encoded[k++] : undefined;
    const flags = run.compressed ? CHUNK_FLAG_ZSTD : (e?.flags ?? CHUNK_FLAGS_NONE);
    written.set(c.hex, packs.add(c.id, e?.data ?? (frames[i] as Buffer), flags));
  }
}
