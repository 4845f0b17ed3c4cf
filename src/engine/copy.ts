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
import { CorruptDataError, NotFoundError } from "../errors.js";
import { manifestName } from "../store/names.js";
import { type ChunkLocation, PackWriter } from "../store/pack-writer.js";
import { type ChunkRun, RunBuilder, readRun, writeRun } from "./chunk-runs.js";
import type { Engine } from "./engine.js";
import type { ActiveWrite } from "./gc.js";
import { putManifest } from "./ingest.js";
import { loadManifest } from "./read.js";
import { locateChunk, type Store } from "./stores.js";

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
  const inFlight: Promise<{ run: ChunkRun; data: Buffer }>[] = [];
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
      for (const c of run.chunks) result.bytesPlain += c.plain ?? 0;
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
function* planRuns(engine: Engine, m: ReturnType<typeof loadManifest>, target: Store): Generator<ChunkRun> {
  const seen = new Set<string>();
  const runs = new RunBuilder(engine.readSegmentBytes);
  for (let i = 0; i < m.count; i++) {
    const id = chunkIdOf(m, i);
    if (!id || target.index.hasChunk(id)) continue;
    const hex = id.toString("hex");
    if (seen.has(hex)) continue;
    seen.add(hex);
    const from = locateChunk(engine.stores.values(), id, target);
    if (!from) throw new CorruptDataError(`chunk ${hex} is in no store's index`);
    const { store, rec } = from;
    const closed = runs.add(store, rec, { id, hex, stored: rec.length, plain: m.lengths[i] as number });
    if (closed) yield closed;
  }
  const last = runs.finish();
  if (last) yield last;
}
