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
import type { CatalogTx } from "../catalog/catalog.js";
import { chunkIdOf, type Manifest } from "../catalog/manifest.js";
import { encodeManifestObject } from "../catalog/manifest-object.js";
import { CorruptDataError, NotFoundError } from "../errors.js";
import type { ChunkLocation } from "../store/pack-writer.js";
import { type ChunkRun, RunBuilder, writeRun } from "./chunk-runs.js";
import type { Engine } from "./engine.js";
import { putManifest } from "./ingest.js";
import { loadManifest } from "./read.js";
import { readRunThroughCache } from "./read-cache.js";
import { locateChunks, type Store } from "./stores.js";

export interface CopyOptions {
  /** Runs inside the commit's transaction; throwing aborts the copy (nothing is indexed). */
  inCommit?: (tx: CatalogTx) => Promise<void>;
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

/** Chunks looked up per catalog call. */
const LOCATE_BATCH = 512;

/** Runs of reads in flight at once. */
const RUNS_IN_FLIGHT = 8;

export function copyObject(
  engine: Engine,
  id: Buffer,
  target: Store,
  options: CopyOptions,
): Promise<CopyResult> {
  // The lease keeps what the copy finds in the target and what it writes there until its commit.
  return engine.leased(`copy ${id.toString("hex")} to ${target.name}`, (lease) =>
    copyLeased(engine, id, target, options, lease),
  );
}

async function copyLeased(
  engine: Engine,
  id: Buffer,
  target: Store,
  options: CopyOptions,
  lease: number,
): Promise<CopyResult> {
  const m = await loadManifest(engine, id);
  const runs = planRuns(engine, m, target);
  const packs = await engine.packWriter(target);
  const written = new Map<string, ChunkLocation>();
  const result: CopyResult = { chunksCopied: 0, bytesMoved: 0, bytesPlain: 0, packsWritten: 0 };
  const inFlight: Promise<{ run: ChunkRun; data: Buffer }>[] = [];
  try {
    for (;;) {
      while (inFlight.length < RUNS_IN_FLIGHT) {
        const next = await runs.next();
        if (next.done) break;
        const p = readRunThroughCache(engine, next.value);
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
    const obj = await engine.catalog.getObject(id);
    const manifest = await engine.catalog.getManifest(id);
    if (!obj || !manifest) throw new NotFoundError(`object ${id.toString("hex")} (released during the copy)`);
    const { size, chunkCount, hashes } = obj;
    await putManifest(target, packs, id, encodeManifestObject(manifest, { size, chunkCount, hashes }));
    const packList = await packs.finish();
    await engine.catalog.transact((tx) =>
      tx.commitCopy(target.name, id, {
        lease,
        written,
        packs: packList,
        alsoInTransaction: options.inCommit,
      }),
    );
    result.chunksCopied = written.size;
    result.packsWritten = packList.length;
    return result;
  } catch (e) {
    await Promise.allSettled(inFlight);
    await packs.abort();
    throw e;
  }
}

/** The distinct chunks of `m` that `target` lacks, grouped into runs of their source packs. */
async function* planRuns(engine: Engine, m: Manifest, target: Store): AsyncGenerator<ChunkRun> {
  const seen = new Set<string>();
  const runs = new RunBuilder(engine.readSegmentBytes);
  for (let base = 0; base < m.count; base += LOCATE_BATCH) {
    // The batch's distinct chunks, then which the target lacks, then where the others are.
    const batch: { id: Buffer; hex: string; plain: number }[] = [];
    for (let i = base; i < Math.min(m.count, base + LOCATE_BATCH); i++) {
      const id = chunkIdOf(m, i);
      if (!id) continue;
      const hex = id.toString("hex");
      if (seen.has(hex)) continue;
      seen.add(hex);
      batch.push({ id, hex, plain: m.lengths[i] as number });
    }
    const inTarget = await target.index.contains(batch.map((c) => c.id));
    const lacking = batch.filter((_, k) => !inTarget[k]);
    const from = await locateChunks(
      engine.stores.values(),
      lacking.map((c) => c.id),
      target,
    );
    for (const [k, c] of lacking.entries()) {
      const at = from[k];
      if (!at) throw new CorruptDataError(`chunk ${c.hex} is in no store's index`);
      const closed = runs.add(at.store, at.rec, {
        id: c.id,
        hex: c.hex,
        stored: at.rec.length,
        plain: c.plain,
      });
      if (closed) yield closed;
    }
  }
  const last = runs.finish();
  if (last) yield last;
}
