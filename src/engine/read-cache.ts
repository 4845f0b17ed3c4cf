/**
 * The read path's use of the node-local chunk cache (src/cache), kept out of read.ts and
 * copy.ts: one call in each, `fetchThroughCache` in place of read.ts's fetch of a segment and
 * `readRunThroughCache` in place of copy.ts's read of a run of chunks.
 *
 * Only segments of remote stores (S3, Swift: any store not on the filesystem) go through the
 * cache. When every chunk of a segment is cached in the form its store holds it (raw or zstd
 * frame), the cached bytes are handed to read.ts's own fetch as if the store had returned
 * them, so decoding and checks run on them unchanged; if they fail a check, those chunks are
 * dropped from the cache and the segment is read from the store after all. Otherwise the
 * segment is read from the store, and once it has passed its checks its chunks as stored are
 * admitted to the cache (in the background, from a copy: the read's buffers go on to the
 * client). Bytes that failed a check are never admitted.
 */
import type { ChunkCache, WantedChunk } from "../cache/chunk-cache.js";
import { chunkIdOf, type Manifest } from "../catalog/manifest.js";
import { CorruptDataError } from "../errors.js";
import type { ObjectBackend } from "../store/backend.js";
import { CHUNK_FLAG_ZSTD, CHUNK_FLAGS_NONE } from "../store/pack-format.js";
import { type ChunkRun, readRun } from "./chunk-runs.js";
import type { Engine } from "./engine.js";
import { loadManifest } from "./read.js";
import type { Store } from "./stores.js";

/** What of a read's segment the cache needs (read.ts's Segment has it all). */
export interface CacheableSegment {
  store: Store | undefined;
  stored: number;
  /** Each chunk's stored length, for a compressed segment. */
  frames?: number[];
  first: number;
  last: number;
}

/** read.ts's fetch of one segment: its stored bytes from `seg.store.backend`, decoded and checked. */
export type FetchSegment<S> = (engine: Engine, m: Manifest, seg: S, into?: Buffer) => Promise<Buffer>;

/** Whether reads from `store` go through the cache: any store not on the local filesystem. */
export function cachesStore(store: Store): boolean {
  return store.config !== undefined && store.config.type !== "filesystem";
}

/** `fetch(engine, m, seg, into)`, through the engine's chunk cache when it has one and the store is remote. */
export function fetchThroughCache<S extends CacheableSegment>(
  engine: Engine,
  m: Manifest,
  seg: S,
  into: Buffer | undefined,
  fetch: FetchSegment<S>,
): Promise<Buffer> {
  const cache = engine.chunkCache;
  const store = seg.store;
  if (!cache || !store || !cachesStore(store)) return fetch(engine, m, seg, into);
  return throughCache(cache, store, wantedChunks(m, seg), seg.stored, into, (st, buf) =>
    fetch(engine, m, { ...seg, store: st }, buf),
  );
}

function wantedChunks(m: Manifest, seg: CacheableSegment): WantedChunk[] {
  const out: WantedChunk[] = [];
  for (let i = seg.first; i <= seg.last; i++) {
    const k = i - seg.first;
    out.push({
      id: chunkIdOf(m, i) as Buffer,
      stored: seg.frames ? (seg.frames[k] as number) : (m.lengths[i] as number),
      flags: seg.frames ? CHUNK_FLAG_ZSTD : CHUNK_FLAGS_NONE,
    });
  }
  return out;
}

/** A backend that only reads, with `get` as given: a stand-in for a store's, for one read. */
function reading(get: ObjectBackend["get"]): ObjectBackend {
  const no = (): never => {
    throw new Error("a segment's source only reads");
  };
  return { get, put: no, stat: no, delete: no, list: no, close: async () => {} };
}

/** Reads with `store` (a stand-in for the real one) into `into`; throws CorruptDataError on bad bytes. */
type ReadWith<T> = (store: Store, into: Buffer | undefined) => Promise<T>;

/**
 * The cache's part of one read of `stored` bytes of `wanted` chunks of `store`: `readWith`
 * over the cached bytes when all are cached (falling back to the store if they fail its
 * checks), else over the store's, admitting them once `readWith` has checked them.
 */
async function throughCache<T>(
  cache: ChunkCache,
  store: Store,
  wanted: WantedChunk[],
  stored: number,
  into: Buffer | undefined,
  readWith: ReadWith<T>,
): Promise<T> {
  const cached = await cache.read(wanted, into);
  let buffer = into;
  if (cached) {
    try {
      return await readWith({ ...store, backend: reading(async () => cached) }, into);
    } catch (e) {
      if (!(e instanceof CorruptDataError)) throw e;
      await cache.drop(wanted.map((w) => w.id));
      // The checks may have taken `into` to a worker and not given it back.
      buffer = undefined;
    }
  }
  if (!cache.reserveFill(stored)) return readWith(store, buffer);
  let copy: Buffer | undefined;
  // The stored bytes, copied as they arrive: the checks may hand the original to a worker,
  // and a pooled buffer goes back to the pool once the client has it.
  const tee = reading(async (name, offset, length, buf) => {
    const d = await store.backend.get(name, offset, length, buf);
    copy = Buffer.allocUnsafeSlow(d.length);
    copy.set(d);
    return d;
  });
  let out: T;
  try {
    out = await readWith({ ...store, backend: tee }, buffer);
  } catch (e) {
    cache.unreserveFill(stored);
    throw e;
  }
  if (copy) void cache.fill(wanted, copy, stored);
  else cache.unreserveFill(stored);
  return out;
}

/**
 * readRun (chunk-runs.ts) for a copy, through the engine's chunk cache when it has one and the
 * run's source is remote: a copy out of S3 or Swift takes what the cache holds, and fills it.
 */
export function readRunThroughCache(engine: Engine, run: ChunkRun): Promise<{ run: ChunkRun; data: Buffer }> {
  const cache = engine.chunkCache;
  if (!cache || !cachesStore(run.source)) return readRun(engine, run);
  const flags = run.compressed ? CHUNK_FLAG_ZSTD : CHUNK_FLAGS_NONE;
  const wanted = run.chunks.map((c) => ({ id: c.id, stored: c.stored, flags }));
  return throughCache(cache, run.source, wanted, run.stored, undefined, async (source) => ({
    run,
    data: (await readRun(engine, { ...run, source })).data,
  }));
}

/** The ids of the stored (not all-zero) chunks of object `id` (hex), in order. */
export async function objectChunkIds(engine: Engine, id: string): Promise<Buffer[]> {
  const m = await loadManifest(engine, Buffer.from(id, "hex"));
  const out: Buffer[] = [];
  for (let i = 0; i < m.count; i++) {
    const c = chunkIdOf(m, i);
    if (c) out.push(c);
  }
  return out;
}

/** Whether every stored chunk of object `id` (hex) is in the cache. */
export async function objectCached(engine: Engine, cache: ChunkCache, id: string): Promise<boolean> {
  return cache.holdsAll(await objectChunkIds(engine, id));
}
