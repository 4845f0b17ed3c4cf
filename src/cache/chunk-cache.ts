/**
 * A node-local cache of chunks read from remote stores: their plain bytes, appended to slab
 * files on local disk (slab-files.ts) with an LMDB index (cache-index.ts). Bounded by
 * `maxBytes`, least recently used slab first out; shared by every process that opens the same
 * directory, and kept across restarts.
 *
 * The cache holds plain bytes, each chunk with its XXH64 sum, because it is a local disk like a
 * filesystem store's: a hit is checked by that sum (a filesystem store's default read check),
 * not by decoding zstd frames and hashing BLAKE3 as the remote store's reads are. A chunk is
 * admitted only once its bytes passed the remote store's own check, and only if they match the
 * sum in its record (when it has one): a hit is as trustworthy as the read that filled it.
 *
 * The cache is content-addressed, so it never holds stale bytes: a chunk is either its bytes
 * or damaged, and the sum catches the second (the chunk is then dropped and read from the store).
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { chunkSum } from "../hash/chunk-sum.js";
import { type CacheEntry, CacheIndex, type OpenSlab, openIndex } from "./cache-index.js";
import { CachedObjects } from "./cached-images.js";
import { SlabFiles } from "./slab-files.js";

export interface ChunkCacheOptions {
  path: string;
  maxBytes: number;
  /** The clock (ms since the epoch); tests inject one. */
  now?: () => number;
  /** Recency updates of hits are written at most this often (default 1000 ms). */
  touchEveryMs?: number;
  /** Bytes of chunks copied aside for filling and not yet written at once (default 64 MiB). */
  fillBudgetBytes?: number;
  /** A slab's size (default maxBytes / 16, at most 64 MiB): the unit of eviction. */
  slabBytes?: number;
}

/** A chunk as a read wants it: its id, its plain length, and the sum in its record, if any. */
export interface WantedChunk {
  id: Buffer;
  length: number;
  sum?: bigint;
}

/** This process's counts since it opened the cache (the metrics read them). */
export interface CacheCounts {
  hits: number;
  misses: number;
  bytesServed: number;
  bytesFilled: number;
  evictions: number;
  /** Chunks dropped because their cached bytes failed a read's check. */
  dropped: number;
}

const MiB = 1024 * 1024;

/** How often descriptors of slabs evicted elsewhere are let go when there are no hits. */
const SWEEP_MS = 5000;

interface PendingFill {
  chunks: readonly WantedChunk[];
  plain: Buffer;
  checked: boolean;
  reserved: number;
}

/** A chunk of a batch, at `offset` in its group (then in its slab). */
interface Admitted {
  id: Buffer;
  offset: number;
  length: number;
  sum: string;
}

function hex64(sum: bigint): string {
  return sum.toString(16).padStart(16, "0");
}

export class ChunkCache {
  readonly counts: CacheCounts = {
    hits: 0,
    misses: 0,
    bytesServed: 0,
    bytesFilled: 0,
    evictions: 0,
    dropped: 0,
  };
  readonly files: SlabFiles;
  readonly index: CacheIndex;
  readonly objects: CachedObjects;
  readonly maxBytes: number;
  readonly slabBytes: number;
  readonly now: () => number;
  private readonly touchEveryMs: number;
  private readonly fillBudget: number;
  private filling = 0;
  private touched = new Set<number>();
  /** The slab this process appends to. */
  private open: OpenSlab | undefined;
  /** Fills not yet admitted; admitted in batches, one after another (each appends where the last ended). */
  private pending: PendingFill[] = [];
  private draining = false;
  private admitting: Promise<void> = Promise.resolve();
  private touchTimer: NodeJS.Timeout | undefined;
  private readonly sweepTimer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(o: ChunkCacheOptions, files: SlabFiles, index: CacheIndex) {
    this.maxBytes = o.maxBytes;
    // Sixteen slabs or more: evicting one frees at most a sixteenth of the cache.
    this.slabBytes = o.slabBytes ?? Math.max(1, Math.min(64 * MiB, Math.floor(o.maxBytes / 16)));
    this.now = o.now ?? Date.now;
    this.touchEveryMs = o.touchEveryMs ?? 1000;
    this.fillBudget = o.fillBudgetBytes ?? 64 * MiB;
    this.files = files;
    this.index = index;
    this.objects = new CachedObjects(index.t);
    this.sweepTimer = setInterval(() => this.forgetEvicted(), SWEEP_MS);
    this.sweepTimer.unref();
  }

  /** Opens (creating) the cache directory `o.path`; a cache of the earlier layout is emptied. */
  static async open(o: ChunkCacheOptions): Promise<ChunkCache> {
    const files = new SlabFiles(o.path);
    await files.init();
    const t = openIndex(join(o.path, "index"));
    const index = new CacheIndex(t, files);
    if (await index.upgrade()) {
      for (const old of ["chunks", "tmp"]) await rm(join(o.path, old), { recursive: true, force: true });
    }
    return new ChunkCache(o, files, index);
  }

  /** Bytes the cache holds now (every process's), its slabs' bytes. */
  totalBytes(): number {
    return this.index.freshTotal();
  }

  /** Whether every one of `ids` is cached. */
  holdsAll(ids: Iterable<Buffer>): boolean {
    for (const id of ids) if (!this.index.get(id)) return false;
    return true;
  }

  /**
   * The plain bytes of `chunks`, back to back, into `into` when given and large enough, each
   * checked against its sum; undefined unless every one is cached and sound (a chunk that is
   * not is dropped). A hit counts as a use of each chunk's slab.
   */
  async read(chunks: readonly WantedChunk[], into?: Buffer): Promise<Buffer | undefined> {
    let size = 0;
    const entries: CacheEntry[] = [];
    for (const c of chunks) {
      const e = this.index.get(c.id);
      if (!e || e.n !== c.length) return this.miss(chunks.length);
      entries.push(e);
      size += c.length;
    }
    // Its own memory (not Node's shared pool): the caller may hand it to a worker thread.
    const out = into && into.length >= size ? into.subarray(0, size) : Buffer.allocUnsafeSlow(size);
    // Chunks admitted together lie together: one read for each run of them, all at once.
    const reads: Promise<Buffer[]>[] = [];
    let at = 0;
    for (let i = 0; i < entries.length; ) {
      const first = entries[i] as CacheEntry;
      let length = first.n;
      let j = i + 1;
      for (; j < entries.length; j++) {
        const e = entries[j] as CacheEntry;
        const prev = entries[j - 1] as CacheEntry;
        if (e.s !== first.s || e.o !== prev.o + prev.n) break;
        length += e.n;
      }
      const ids = chunks.slice(i, j).map((c) => c.id);
      reads.push(this.files.readInto(first.s, first.o, length, out, at).then((ok) => (ok ? [] : ids)));
      at += length;
      i = j;
    }
    const lost = (await Promise.all(reads)).flat();
    if (lost.length > 0) {
      // Their slab is gone or short (evicted by another process a moment ago, or lost in a
      // crash): their entries go too, so that they are admitted again.
      await this.index.drop(lost);
      return this.miss(chunks.length);
    }
    const bad: Buffer[] = [];
    at = 0;
    chunks.forEach((c, k) => {
      const e = entries[k] as CacheEntry;
      const sum = hex64(chunkSum(out.subarray(at, at + c.length)));
      if (sum !== e.x || (c.sum !== undefined && sum !== hex64(c.sum))) bad.push(c.id);
      at += c.length;
    });
    if (bad.length > 0) {
      await this.drop(bad);
      return this.miss(chunks.length);
    }
    this.counts.hits += chunks.length;
    this.counts.bytesServed += size;
    for (const e of entries) this.touched.add(e.s);
    this.scheduleTouch();
    return out;
  }

  private miss(n: number): undefined {
    this.counts.misses += n;
    return undefined;
  }

  /**
   * Whether `bytes` more may be set aside for filling now; if so the caller must `fill` or
   * `unreserveFill` them back. Past the budget a read is served without filling: memory stays
   * bounded.
   */
  reserveFill(bytes: number): boolean {
    if (this.closed || this.filling + bytes > this.fillBudget) return false;
    this.filling += bytes;
    return true;
  }

  /** Gives back a reservation that will not be filled (the read failed, or read nothing). */
  unreserveFill(bytes: number): void {
    this.filling -= bytes;
  }

  /**
   * Admits chunks: `plain` holds their plain bytes back to back. `checked`: the read that got
   * them checked them (against their ids or sums); unchecked bytes are admitted only where
   * they match the sum in the chunk's record. Never throws: a cache that cannot be filled only
   * means reads go to the store.
   */
  fill(chunks: readonly WantedChunk[], plain: Buffer, reserved: number, checked = true): Promise<void> {
    this.pending.push({ chunks, plain, checked, reserved });
    if (!this.draining) {
      this.draining = true;
      this.admitting = this.drain();
    }
    return this.admitting;
  }

  /**
   * Admits what is pending, batch after batch: fills arrive faster than one index transaction
   * returns while a download runs, so each batch takes every fill that came meanwhile (one
   * admission per segment, one after another, kept up with a 330 MB/s download only a third
   * of the time: bench/cache.ts).
   */
  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        try {
          if (!this.closed) await this.admit(batch);
        } catch {
          // A cache that cannot be filled only means reads go to the store.
        } finally {
          for (const f of batch) this.filling -= f.reserved;
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private async admit(batch: readonly PendingFill[]): Promise<void> {
    const seen = new Set<string>();
    let group: { parts: Buffer[]; chunks: Admitted[]; length: number } = { parts: [], chunks: [], length: 0 };
    const groups = [group];
    for (const f of batch) {
      let at = 0;
      for (const c of f.chunks) {
        const bytes = f.plain.subarray(at, at + c.length);
        at += c.length;
        const hex = c.id.toString("hex");
        if (seen.has(hex) || this.index.get(c.id)) continue;
        const sum = chunkSum(bytes);
        if (c.sum === undefined ? !f.checked : c.sum !== sum) continue;
        seen.add(hex);
        // A slab's worth at a time, so that a batch does not make one slab many times its size.
        if (group.length > 0 && group.length + c.length > this.slabBytes) {
          group = { parts: [], chunks: [], length: 0 };
          groups.push(group);
        }
        group.parts.push(bytes);
        group.chunks.push({ id: c.id, offset: group.length, length: c.length, sum: hex64(sum) });
        group.length += c.length;
      }
    }
    for (const g of groups) {
      if (g.length === 0 || g.length > this.maxBytes) continue;
      const r = await this.index.reserve(this.open, g.length, this.slabBytes, this.maxBytes, this.now());
      if (!r) continue;
      if (this.open && this.open.slab !== r.open.slab) this.files.closeFd(this.open.fd);
      this.open = r.open;
      this.counts.evictions += r.evicted;
      this.files.writeAt(r.at.fd, g.parts, r.at.offset);
      for (const a of g.chunks) a.offset += r.at.offset;
      await this.index.commit(r.at, g.chunks);
      this.counts.bytesFilled += g.length;
    }
  }

  /** Drops chunks whose cached bytes failed a check. */
  async drop(ids: readonly Buffer[]): Promise<void> {
    this.counts.dropped += await this.index.drop(ids);
  }

  /** Evicts the slabs holding `ids` (cache-index.ts: evictHolding); the chunks and bytes evicted. */
  async evictHolding(ids: readonly Buffer[]): Promise<{ count: number; bytes: number }> {
    const r = await this.index.evictHolding(ids);
    this.counts.evictions += r.count;
    return r;
  }

  /**
   * Lets go of descriptors of slabs another process evicted, so that their space is freed:
   * an open descriptor keeps a removed file's blocks. Run with each recency flush and every
   * few seconds.
   */
  private forgetEvicted(): void {
    const live = (slab: number) => this.index.liveSlab(slab);
    this.files.forgetGone(live);
    if (this.open && !this.draining && !live(this.open.slab)) {
      this.files.closeFd(this.open.fd);
      this.open = undefined;
    }
  }

  private scheduleTouch(): void {
    if (this.touchTimer || this.closed) return;
    this.touchTimer = setTimeout(() => {
      this.touchTimer = undefined;
      void this.flushTouches();
    }, this.touchEveryMs);
    this.touchTimer.unref();
  }

  /** Writes the pending recency updates (also on close). */
  flushTouches(): Promise<void> {
    this.forgetEvicted();
    const slabs = [...this.touched];
    this.touched = new Set();
    if (slabs.length === 0) return this.flushing;
    this.flushing = this.flushing.then(() => this.index.touch(slabs, this.now()).catch(() => {}));
    return this.flushing;
  }

  /** Empties the cache of chunks (every process's); how many image entries it had. */
  async clear(): Promise<number> {
    await this.index.clear();
    return this.objects.clear();
  }

  /**
   * Brings the directory and the index back into agreement after crashes: slabs whose file is
   * missing or short are dropped with their chunks, files the index does not know removed.
   * What Glance's cache clean does for its stalled and invalid files.
   */
  async clean(): Promise<{ files: number; entries: number }> {
    await this.flushTouches();
    await this.admitting;
    const sizes = new Map<number, number>();
    for await (const f of this.files.walk()) sizes.set(f.slab, f.size);
    return this.index.recount(sizes);
  }

  /** Evicts down to the bound (after it was lowered); the chunks and bytes evicted. */
  async prune(): Promise<{ count: number; bytes: number }> {
    const r = await this.index.prune(this.maxBytes);
    this.counts.evictions += r.count;
    return r;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // First: fills pending are then dropped, and none starts once the last batch is in.
    this.closed = true;
    await this.admitting;
    if (this.touchTimer) clearTimeout(this.touchTimer);
    this.touchTimer = undefined;
    clearInterval(this.sweepTimer);
    await this.flushTouches();
    if (this.open) this.files.closeFd(this.open.fd);
    this.open = undefined;
    this.files.closeAll();
    await this.index.close();
  }
}
