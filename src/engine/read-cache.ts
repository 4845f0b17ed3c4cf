/**
 * The read path's use of the node-local chunk cache (src/cache), kept out of read.ts and
 * copy.ts: one call in each, `fetchThroughCache` in place of read.ts's fetch of a segment and
 * `readRunThroughCache` in place of copy.ts's read of a run of chunks.
 *
 * Only segments of remote stores (S3, Swift: any store not on the filesystem) go through the
 * cache. The cache holds chunks' plain bytes: when every chunk of a segment is cached, the
 * segment is read from the cache and checked there by each chunk's XXH64 sum (chunk-cache.ts
 * says why that is enough); a chunk that fails is dropped and the segment read from the store.
 * Otherwise the segment is read from the store with the store's own check, and its plain
 * bytes are then admitted to the cache (in the background, from a copy: the read's buffers go
 * on to the client). Bytes that failed a check are never admitted.
 */
import type { ChunkCache, WantedChunk } from "../cache/chunk-cache.js";
import { chunkIdOf, type Manifest } from "../catalog/manifest.js";
import { CorruptDataError } from "../errors.js";
import { type ChunkRun, readRun } from "./chunk-runs.js";
import type { Engine } from "./engine.js";
import { loadManifest } from "./read.js";
import type { Store } from "./stores.js";

/** What of a read's segment the cache needs (read.ts's Segment has it all). */
export interface CacheableSegment {
  store: Store | undefined;
  /** Plain bytes of the segment. */
  length: number;
  first: number;
  last: number;
  /** Each chunk's fast checksum, from its record. */
  sums: (bigint | undefined)[];
  /** Each chunk's stored length, for a compressed segment. */
  frames?: number[];
}

/** read.ts's fetch of one segment: its plain bytes from `seg.store`, decoded and checked. */
export type FetchSegment<S> = (engine: Engine, m: Manifest, seg: S, into?: Buffer) => Promise<Buffer>;

/** Whether reads from `store` go through the cache: any store not on the local filesystem. */
export function cachesStore(store: Store): boolean {
  return store.config !== undefined && store.config.type !== "filesystem";
}

/**
 * Whether `seg` will be read from the engine's chunk cache (all its chunks are there now): its
 * plain bytes then go into a pool buffer even when the store holds them compressed.
 */
export function inCacheWhole(engine: Engine, m: Manifest, seg: CacheableSegment): boolean {
  const cache = engine.chunkCache;
  if (!cache || !seg.store || !cachesStore(seg.store)) return false;
  for (let i = seg.first; i <= seg.last; i++) if (!cache.index.get(chunkIdOf(m, i) as Buffer)) return false;
  return true;
}

/** `fetch(engine, m, seg, into)`, through the engine's chunk cache when it has one and the store is remote. */
export async function fetchThroughCache<S extends CacheableSegment>(
  engine: Engine,
  m: Manifest,
  seg: S,
  into: Buffer | undefined,
  fetch: FetchSegment<S>,
): Promise<Buffer> {
  const cache = engine.chunkCache;
  const store = seg.store;
  if (!cache || !store || !cachesStore(store)) return fetch(engine, m, seg, into);
  const wanted: WantedChunk[] = [];
  for (let i = seg.first; i <= seg.last; i++) {
    const sum = seg.sums[i - seg.first];
    wanted.push({
      id: chunkIdOf(m, i) as Buffer,
      length: m.lengths[i] as number,
      ...(sum === undefined ? {} : { sum }),
    });
  }
  const hit = await cache.read(wanted, into);
  if (hit) return hit;
  // A compressed segment's read is not into a pool buffer (the codec's workers take it): given
  // one in the hope of a hit (inCacheWhole), it reads into its own.
  const buffer = seg.frames ? undefined : into;
  if (!cache.reserveFill(seg.length)) return fetch(engine, m, seg, buffer);
  let plain: Buffer;
  try {
    plain = await fetch(engine, m, seg, buffer);
  } catch (e) {
    cache.unreserveFill(seg.length);
    throw e;
  }
  // A copy: a pooled buffer goes back to the pool once the client has it.
  void cache.fill(wanted, Buffer.from(plain), seg.length, store.readCheck !== "off");
  return plain;
}

/**
 * readRun (chunk-runs.ts) for a copy, through the engine's chunk cache when it has one and the
 * run's source is remote: a copy out of S3 or Swift takes what the cache holds, and fills it.
 * Cached chunks come as a run of raw chunks (the cache holds plain bytes), checked against
 * their ids as every copy's are; the target compresses them again if it compresses.
 */
export async function readRunThroughCache(
  engine: Engine,
  run: ChunkRun,
): Promise<{ run: ChunkRun; data: Buffer }> {
  const cache = engine.chunkCache;
  if (!cache || !cachesStore(run.source) || run.chunks.some((c) => c.plain === undefined)) {
    return readRun(engine, run);
  }
  const wanted = run.chunks.map((c) => ({
    id: c.id,
    length: c.plain as number,
    ...(c.sum === undefined ? {} : { sum: c.sum }),
  }));
  const plainBytes = wanted.reduce((n, w) => n + w.length, 0);
  const hit = await cache.read(wanted);
  if (hit) {
    let at = 0;
    const spans = wanted.map((w) => {
      const s = { offset: at, length: w.length, id: w.id };
      at += w.length;
      return s;
    });
    try {
      const data = await engine.verifier.verify(hit, spans);
      const chunks = run.chunks.map((c) => ({ ...c, stored: c.plain as number }));
      return { run: { ...run, compressed: false, stored: plainBytes, chunks }, data };
    } catch (e) {
      if (!(e instanceof CorruptDataError)) throw e;
      await cache.drop(wanted.map((w) => w.id));
    }
  }
  if (!cache.reserveFill(plainBytes)) return readRun(engine, run);
  let read: { run: ChunkRun; data: Buffer };
  try {
    read = await readRun(engine, run);
  } catch (e) {
    cache.unreserveFill(plainBytes);
    throw e;
  }
  // Checked against their ids by readRun; compressed ones are decoded again for the cache.
  const framed = run.chunks.map((c, k) => ({
    stored: c.stored,
    plain: (wanted[k] as WantedChunk).length,
    id: c.id,
  }));
  const plain = run.compressed
    ? // From a copy: the codec's workers take the buffer they decode.
      engine.codec.decompress(Buffer.from(read.data), framed, false)
    : Promise.resolve(Buffer.from(read.data));
  plain.then(
    (p) => cache.fill(wanted, p, plainBytes),
    () => cache.unreserveFill(plainBytes),
  );
  return read;
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
