/**
 * Dedup accounting, exact: what the images add up to (logical bytes) against what the stores
 * keep (physical bytes), per store and in total, and per object what only it references and
 * what it shares.
 *
 * Store totals are one scan of the object records and one of each store's chunk and pack indexes (no
 * manifest is decoded): ~0.1 s per 100,000 objects, ~1 s per million chunks. An object's own
 * figures decode its manifest and look up its chunks: cheap for one, meant for one at a time.
 */
import { holders, type StoreHoldings } from "../catalog/catalog.js";
import { chunkIdOf, decodeManifest } from "../catalog/manifest.js";
import { NotFoundError } from "../errors.js";
import type { Engine } from "./engine.js";
import type { Store } from "./stores.js";

export interface StoreStats {
  store: string;
  /** Objects the store holds, and their holders (images: one each). */
  objects: number;
  holders: number;
  /** Bytes the holders would take undeduplicated: each holder's object size, zeros included. */
  logicalBytes: number;
  /** The distinct chunks indexed and referenced, and what they take stored (compressed). */
  chunks: number;
  storedBytes: number;
  /** The packs' sizes: stored chunks plus unindexed leftovers and pack trailers. */
  packBytes: number;
  /** logicalBytes / storedBytes. */
  dedupRatio: number;
}

export interface ObjectStats {
  object: string;
  size: number;
  /** All-zero bytes: never stored. */
  zeroBytes: number;
  /** Its distinct stored chunks in `store`, and their stored bytes. */
  chunks: number;
  storedBytes: number;
  /** Stored bytes of chunks no other object references (and it has one holder). */
  uniqueBytes: number;
  /** Stored bytes of chunks other objects reference too. */
  sharedBytes: number;
  /** The most other objects sharing any one of its chunks. */
  maxSharers: number;
}

async function storeStats(store: Store, held: StoreHoldings): Promise<StoreStats> {
  let chunks = 0;
  let storedBytes = 0;
  for await (const { rec } of store.index.scanChunks()) {
    if (rec.refs === 0) continue; // garbage awaiting collection
    chunks++;
    storedBytes += rec.length;
  }
  let packBytes = 0;
  for await (const { rec } of store.index.scanPacks()) packBytes += rec.size;
  return {
    store: store.name,
    ...held,
    chunks,
    storedBytes,
    packBytes,
    dedupRatio: dedupRatio(held.logicalBytes, storedBytes),
  };
}

function dedupRatio(logical: number, stored: number): number {
  return stored === 0 ? 0 : Math.round((logical / stored) * 100) / 100;
}

/** The accounting of one object in `store` (default: the first store holding it). */
export async function objectStats(
  engine: Engine,
  manifestId: Buffer,
  storeName?: string,
): Promise<ObjectStats> {
  const hex = manifestId.toString("hex");
  const obj = await engine.catalog.getObject(manifestId);
  const bytes = await engine.catalog.getManifest(manifestId);
  if (!obj || !bytes) throw new NotFoundError(`object ${hex}`);
  const store = engine.store(storeName ?? Object.keys(obj.stores)[0]);
  const m = decodeManifest(bytes);
  const seen = new Set<string>();
  const out: ObjectStats = {
    object: hex,
    size: m.size,
    zeroBytes: 0,
    chunks: 0,
    storedBytes: 0,
    uniqueBytes: 0,
    sharedBytes: 0,
    maxSharers: 0,
  };
  const alone = holders(obj) === 1;
  const distinct: Buffer[] = [];
  for (let i = 0; i < m.count; i++) {
    const id = chunkIdOf(m, i);
    if (!id) {
      out.zeroBytes += m.lengths[i] as number;
      continue;
    }
    const key = id.toString("hex");
    if (seen.has(key)) continue;
    seen.add(key);
    distinct.push(id);
  }
  for (const rec of await store.index.lookup(distinct)) {
    if (!rec) continue;
    out.chunks++;
    out.storedBytes += rec.length;
    if (rec.refs <= 1 && alone) out.uniqueBytes += rec.length;
    else out.sharedBytes += rec.length;
    out.maxSharers = Math.max(out.maxSharers, rec.refs - 1);
  }
  return out;
}

export interface StatsReport {
  stores: StoreStats[];
  /** Over every store: each store's copy counts where it is kept. */
  total: { logicalBytes: number; storedBytes: number; packBytes: number; dedupRatio: number };
}

export async function allStats(engine: Engine): Promise<StatsReport> {
  const held = await engine.catalog.holdingsByStore();
  const none: StoreHoldings = { objects: 0, holders: 0, logicalBytes: 0 };
  const stores: StoreStats[] = [];
  for (const s of engine.stores.values()) stores.push(await storeStats(s, held.get(s.name) ?? none));
  const sum = (f: (s: StoreStats) => number) => stores.reduce((n, s) => n + f(s), 0);
  const logicalBytes = sum((s) => s.logicalBytes);
  const storedBytes = sum((s) => s.storedBytes);
  return {
    stores,
    total: {
      logicalBytes,
      storedBytes,
      packBytes: sum((s) => s.packBytes),
      dedupRatio: dedupRatio(logicalBytes, storedBytes),
    },
  };
}
