/**
 * Read: an object's bytes, or a range of them, as a stream of Buffers.
 *
 * The manifest gives each chunk's place in the object; the chunk indexes give its place in a
 * pack of the first store, in the engine's read order, that holds it. Chunks adjacent in the same pack are fetched with one ranged read (up to readSegmentBytes), and
 * reads are issued ahead of the consumer up to `readAheadBytes`, so a download keeps the
 * backend busy without holding more than that in memory. Every chunk is checked as its
 * store's readCheck says before it is handed out (read-check.ts). All-zero chunks are
 * synthesized.
 */
import { chunkIdOf, decodeManifest, type Manifest } from "../catalog/manifest.js";
import { CorruptDataError, DamagedDataError, NotFoundError, RangeNotSatisfiableError } from "../errors.js";
import { packName } from "../store/names.js";
import { CHUNK_FLAG_ZSTD } from "../store/pack-format.js";
import type { Engine } from "./engine.js";
import { type Located, locateRemembered, preferredOrder } from "./locate.js";
import { fetchThroughCache, inCacheWhole } from "./read-cache.js";
import { type CheckedSpan, checkSegment, needsFullCheck } from "./read-check.js";
import type { Store } from "./stores.js";
import { zeroBytes } from "./zero.js";

export interface ReadOptions {
  /** First byte (inclusive), default 0. */
  start?: number;
  /** End (exclusive), default the object's size. */
  end?: number;
  /**
   * Stores to read from first, by name, then the others in read order (Glance's `?prefer=`).
   * Such a read asks the catalog where every chunk is: the node's location cache knows one
   * place per chunk, whichever store it was.
   */
  prefer?: readonly string[];
}

/**
 * A piece of a read whose buffer may come from the engine's pool of read buffers: call
 * `release` once nothing uses `bytes` any more (e.g. when the socket has taken it), and the
 * buffer is reused for a later read instead of faulting in fresh pages.
 */
export interface ReadPiece {
  bytes: Buffer;
  release(): void;
}

/**
 * A run of chunks read together: one ranged read of a pack, or synthesized zeros. A segment
 * is all raw chunks or all compressed ones, so raw reads keep their pooled, copy-free path;
 * both its stored and its plain bytes stay within readSegmentBytes, which bounds the buffers
 * decompression makes and spreads the work over the codec's workers.
 */
interface Segment {
  store: Store | undefined;
  pack: string | undefined;
  packOffset: number;
  /** Bytes of the object the segment yields. */
  length: number;
  /** Bytes read from the pack: `length` for raw chunks; for compressed ones, each one's frame. */
  stored: number;
  /** Stored length of each chunk, for a compressed segment. */
  frames?: number[];
  /** Manifest indexes of the chunks in this segment. */
  first: number;
  last: number;
  /** Each chunk's fast checksum, from its record (undefined: none recorded). */
  sums: (bigint | undefined)[];
}

/** Loads and decodes a manifest, or throws NotFoundError (DamagedDataError for a damaged object). */
export async function loadManifest(engine: Engine, id: Buffer): Promise<Manifest> {
  const key = id.toString("hex");
  const obj = await engine.catalog.getObject(id);
  if (!obj) throw new NotFoundError(`object ${key}`);
  if (obj.damaged) throw new DamagedDataError(`object ${key}`);
  const cached = engine.manifests.get(key);
  if (cached) return cached;
  const bytes = await engine.catalog.getManifest(id);
  if (!bytes) throw new NotFoundError(`object ${key}`);
  const m = decodeManifest(bytes);
  engine.manifests.set(key, m);
  return m;
}

/** Index of the chunk that contains byte `pos` (pos < size). */
function chunkAt(m: Manifest, pos: number): number {
  let lo = 0;
  let hi = m.count - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (m.offsets[mid] <= pos) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Chunks located per catalog lookup: one round trip per this many, while reading. */
const LOCATE_BATCH = 512;

async function* planSegments(
  engine: Engine,
  m: Manifest,
  from: number,
  to: number,
  fresh = false,
  order?: Store[],
): AsyncGenerator<Segment> {
  let seg: Segment | undefined;
  // The read budget's segment size, taken when a segment starts (not once per chunk).
  let limit = 0;
  let located: Located = [];
  let batchEnd = from - 1;
  let k = 0;
  // The next batch is looked up while this one's segments are read: where a lookup costs a
  // round trip (a shared catalog), the reads do not wait for it in line.
  let next: { start: number; end: number; located: Promise<Located> } | undefined;
  const locate = (start: number) => {
    const end = Math.min(to, start + LOCATE_BATCH - 1);
    const ids: Buffer[] = [];
    for (let j = start; j <= end; j++) {
      const id = chunkIdOf(m, j);
      if (id) ids.push(id);
    }
    const p = locateRemembered(engine, ids, fresh, order);
    p.catch(() => {}); // a read given up before it is awaited
    return { start, end, located: p };
  };
  for (let i = from; i <= to; i++) {
    if (i > batchEnd) {
      const batch = next?.start === i ? next : locate(i);
      next = batch.end < to ? locate(batch.end + 1) : undefined;
      batchEnd = batch.end;
      located = await batch.located;
      k = 0;
    }
    const id = chunkIdOf(m, i);
    const len = m.lengths[i];
    let store: Store | undefined;
    let pack: string | undefined;
    let packOffset = 0;
    let stored = len;
    let compressed = false;
    let sum: bigint | undefined;
    if (id) {
      const at = located[k++];
      if (!at) throw new CorruptDataError(`chunk ${id.toString("hex")} is missing from the index`);
      const { rec } = at;
      store = at.store;
      pack = packName(rec.pack.toString("hex"));
      packOffset = rec.offset;
      compressed = (rec.flags & CHUNK_FLAG_ZSTD) !== 0;
      stored = rec.length;
      sum = rec.sum;
    }
    const extends_ =
      seg &&
      seg.store === store &&
      seg.pack === pack &&
      (seg.frames !== undefined) === compressed &&
      seg.stored + stored <= limit &&
      seg.length + len <= limit &&
      (pack === undefined || seg.packOffset + seg.stored === packOffset);
    if (seg && extends_) {
      seg.length += len;
      seg.stored += stored;
      seg.frames?.push(stored);
      seg.sums.push(sum);
      seg.last = i;
    } else {
      if (seg) yield seg;
      limit = engine.readBudget.segment;
      seg = {
        store,
        pack,
        packOffset,
        length: len,
        stored,
        first: i,
        last: i,
        sums: [sum],
        ...(compressed ? { frames: [stored] } : {}),
      };
    }
  }
  if (seg) yield seg;
}

/** Where each chunk of a segment is in its plain bytes, with what it must match. */
function spansOf(m: Manifest, seg: Segment): CheckedSpan[] {
  const spans: CheckedSpan[] = [];
  let at = 0;
  for (let i = seg.first; i <= seg.last; i++) {
    spans.push({
      offset: at,
      length: m.lengths[i],
      id: chunkIdOf(m, i) as Buffer,
      sum: seg.sums[i - seg.first],
    });
    at += m.lengths[i];
  }
  return spans;
}

function fetchSegment(engine: Engine, m: Manifest, seg: Segment, into?: Buffer): Promise<Buffer> {
  const store = seg.store as Store;
  const data = store.backend.get(seg.pack as string, seg.packOffset, seg.stored, into);
  const spans = spansOf(m, seg);
  const frames = seg.frames;
  if (frames) {
    const framed = frames.map((stored, k) => ({ stored, plain: spans[k].length, id: spans[k].id }));
    // BLAKE3 is checked on the codec's workers as it decodes, when the store's check needs it.
    const full = needsFullCheck(store.readCheck, spans);
    return data
      .then((d) => engine.codec.decompress(d, framed, full))
      .then((plain) => checkSegment(engine, store.readCheck, plain, spans, full));
  }
  return data.then((d) => checkSegment(engine, store.readCheck, d, spans));
}

/**
 * fetchSegment, its chunks looked up again in the catalog if their pack is gone: a collection
 * moved them to another pack after this read located them (a batch ahead, or long before: the
 * node's location cache) and deleted the old one, its grace over; or, with a location cache,
 * bytes that fail their check (a repair moved the chunk). Once only: a pack gone that the index still names is
 * damage, and its NotFoundError stands.
 */
async function fetchRelocating(
  engine: Engine,
  m: Manifest,
  seg: Segment,
  into?: Buffer,
  order?: Store[],
): Promise<Buffer> {
  try {
    return await fetchSegment(engine, m, seg, into);
  } catch (e) {
    // Bytes that fail their check where the node's location cache sent the read may be a copy
    // repaired since (fsck on another node) at a place the catalog no longer names: ask it.
    const stale =
      e instanceof NotFoundError || (e instanceof CorruptDataError && engine.locations !== undefined);
    if (!stale) throw e;
    const parts: Buffer[] = [];
    for await (const moved of planSegments(engine, m, seg.first, seg.last, true, order)) {
      parts.push(await fetchSegment(engine, m, moved));
    }
    if (!into || into.length < seg.length) return Buffer.concat(parts, seg.length);
    let at = 0;
    for (const p of parts) at += p.copy(into, at);
    return into.subarray(0, seg.length);
  }
}

export async function* readObject(engine: Engine, id: Buffer, options: ReadOptions): AsyncGenerator<Buffer> {
  for await (const piece of readPieces(engine, id, options, false)) {
    yield piece.bytes;
    piece.release(); // the consumer has it: it no longer counts against the read budget
  }
}

/** The read itself: pieces whose buffers come from the engine's pool when `pooled`. */
export async function* readPieces(
  engine: Engine,
  id: Buffer,
  options: ReadOptions,
  pooled: boolean,
): AsyncGenerator<ReadPiece> {
  const m = await loadManifest(engine, id);
  const start = options.start ?? 0;
  const end = options.end ?? m.size;
  if (
    !(Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 0 && start <= end && end <= m.size)
  ) {
    throw new RangeNotSatisfiableError(`range [${start}, ${end}) is outside an object of ${m.size} bytes`);
  }
  if (start === end) return;
  const first = chunkAt(m, start);
  const last = chunkAt(m, end - 1);
  const order =
    options.prefer && options.prefer.length > 0 ? preferredOrder(engine, options.prefer) : undefined;
  // A segment looked up again keeps the read's preferred order.
  const relocating = (e: Engine, mm: Manifest, sg: Segment, into?: Buffer) =>
    fetchRelocating(e, mm, sg, into, order);
  const plan = planSegments(engine, m, first, last, false, order);
  const queue: { seg: Segment; data: Promise<Buffer> | undefined; pooled: boolean }[] = [];
  let queued = 0;
  // Queued segments in pool buffers. Each holds a whole buffer whatever its length, so only as
  // many as full-size segments fill the read-ahead with take one; the rest are read into
  // buffers of their own size. Else a run of small segments (a pack's end, a chunk repeated
  // from elsewhere) empties the pool and faults in fresh buffers that are dropped again
  // (measured on a 330 MB qcow2 image: 26 fresh 4 MiB buffers and ~5k page faults per read,
  // twice the CPU per byte of random data).
  let pooledQueued = 0;
  let planned = false;
  const budget = engine.readBudget;
  const leave = budget.enter();
  // What this read holds of the budget: segments queued, and pieces handed out and not yet
  // released (a download's: until its socket has sent them). All of it goes back at the end.
  let holding = 0;
  let ended = false;
  const giveBack = (n: number) => {
    if (ended) return;
    holding -= n;
    budget.release(n);
  };

  const fill = async () => {
    while (!planned && (queue.length === 0 || (queued < budget.ahead && budget.room))) {
      const next = await plan.next();
      if (next.done) {
        planned = true;
        break;
      }
      const seg = next.value;
      // Compressed segments come back in a buffer of the codec's, not the pool's (unless
      // the chunk cache has them plain). Pool buffers are full-size and stay resident: only
      // for reads at full size.
      const pool =
        pooled &&
        seg.pack !== undefined &&
        (!seg.frames || inCacheWhole(engine, m, seg)) &&
        budget.unconstrained &&
        pooledQueued * engine.readSegmentBytes <= budget.ahead;
      const into = pool ? engine.readBuffers.take() : undefined;
      // Through the node's chunk cache for remote stores (read-cache.ts), else fetchRelocating alone.
      const data = seg.pack === undefined ? undefined : fetchThroughCache(engine, m, seg, into, relocating);
      // Reads ahead may fail after the consumer has gone; their errors surface when awaited.
      data?.catch(() => {});
      queue.push({ seg, data, pooled: into !== undefined });
      queued += seg.length;
      if (into) pooledQueued++;
      holding += seg.length;
      budget.hold(seg.length);
    }
  };

  try {
    yield* drain();
  } finally {
    budget.release(holding);
    ended = true;
    leave();
  }

  async function* drain(): AsyncGenerator<ReadPiece> {
    for (;;) {
      await fill();
      const item = queue.shift();
      if (!item) return;
      queued -= item.seg.length;
      if (item.pooled) pooledQueued--;
      const { seg } = item;
      let data: Buffer;
      if (item.data) {
        data = await item.data;
      } else {
        data = zeroBytes(seg.length);
      }
      // Trim the first and last segments to the requested range.
      const segStart = m.offsets[seg.first];
      const lo = Math.max(0, start - segStart);
      const hi = Math.min(seg.length, end - segStart);
      const bytes = lo === 0 && hi === seg.length ? data : data.subarray(lo, hi);
      const pooledData = item.pooled ? data : undefined;
      let held = seg.length;
      const release = () => {
        giveBack(held);
        held = 0;
        if (pooledData) engine.readBuffers.give(pooledData);
      };
      yield { bytes, release };
    }
  }
}
