/**
 * A node-local cache of chunks read from remote stores: files on local disk, one per chunk id,
 * holding the chunk as stored in its pack (raw, or its zstd frame), so that what is read from
 * the cache goes through the same decoding and checks as what is read from the store. Bounded
 * by `maxBytes`, least recently used first out; shared by every process that opens the same
 * directory, and kept across restarts (cache-index.ts says how).
 *
 * The cache is content-addressed, so it never holds stale bytes: a file is either the chunk
 * or damaged, and the reader's check catches the second (the reader then drops it: `drop`).
 */
import { join } from "node:path";
import { CacheFiles } from "./cache-files.js";
import { type CacheEntry, CacheIndex, openIndex } from "./cache-index.js";
import { CachedObjects } from "./cached-images.js";

export interface ChunkCacheOptions {
  path: string;
  maxBytes: number;
  /** The clock (ms since the epoch); tests inject one. */
  now?: () => number;
  /** Recency updates of hits are written at most this often (default 1000 ms). */
  touchEveryMs?: number;
  /** Bytes of chunks copied aside for filling and not yet written at once (default 64 MiB). */
  fillBudgetBytes?: number;
}

/** A chunk as a read wants it: its id, and its size and flags in the store being read. */
export interface WantedChunk {
  id: Buffer;
  stored: number;
  flags: number;
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

export class ChunkCache {
  readonly counts: CacheCounts = {
    hits: 0,
    misses: 0,
    bytesServed: 0,
    bytesFilled: 0,
    evictions: 0,
    dropped: 0,
  };
  readonly files: CacheFiles;
  readonly index: CacheIndex;
  readonly objects: CachedObjects;
  readonly maxBytes: number;
  readonly now: () => number;
  private readonly touchEveryMs: number;
  private readonly fillBudget: number;
  private filling = 0;
  private touched = new Map<string, Buffer>();
  /** Fills under way, which close() lets finish. */
  private readonly fills = new Set<Promise<void>>();
  private touchTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(o: ChunkCacheOptions, files: CacheFiles) {
    this.maxBytes = o.maxBytes;
    this.now = o.now ?? Date.now;
    this.touchEveryMs = o.touchEveryMs ?? 1000;
    this.fillBudget = o.fillBudgetBytes ?? 64 * 1024 * 1024;
    this.files = files;
    const t = openIndex(join(o.path, "index"));
    this.index = new CacheIndex(t, files);
    this.objects = new CachedObjects(t);
  }

  /** Opens (creating) the cache directory `o.path`. */
  static async open(o: ChunkCacheOptions): Promise<ChunkCache> {
    const files = new CacheFiles(o.path);
    await files.init();
    return new ChunkCache(o, files);
  }

  /** Bytes of chunks in the cache now (every process's). */
  totalBytes(): number {
    return this.index.freshTotal();
  }

  /** Whether every one of `ids` is cached (whatever its form). */
  holdsAll(ids: Iterable<Buffer>): boolean {
    for (const id of ids) if (!this.index.get(id)) return false;
    return true;
  }

  /**
   * The stored bytes of `chunks`, back to back (as they lie in their pack), into `into` when
   * given and large enough; undefined unless every one is cached in the form wanted. A hit
   * counts as a use of each chunk.
   */
  async read(chunks: readonly WantedChunk[], into?: Buffer): Promise<Buffer | undefined> {
    let size = 0;
    const entries: CacheEntry[] = [];
    for (const c of chunks) {
      const e = this.index.get(c.id);
      if (!e || e.n !== c.stored || e.f !== c.flags) return this.miss(chunks.length);
      entries.push(e);
      size += c.stored;
    }
    // Its own memory (not Node's shared pool): the checks may hand it to a worker thread.
    const out = into && into.length >= size ? into.subarray(0, size) : Buffer.allocUnsafeSlow(size);
    let at = 0;
    for (const c of chunks) {
      if (!this.files.readInto(c.id.toString("hex"), c.stored, out, at)) return this.miss(chunks.length);
      at += c.stored;
    }
    this.counts.hits += chunks.length;
    this.counts.bytesServed += size;
    for (const c of chunks) this.touched.set(c.id.toString("hex"), c.id);
    this.scheduleTouch();
    return out;
  }

  private miss(n: number): undefined {
    this.counts.misses += n;
    return undefined;
  }

  /**
   * Whether `bytes` more may be set aside for filling now; if so the caller must `filled` them
   * back. Past the budget a read is served without filling: memory stays bounded.
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
   * Admits checked chunks: `data` holds them back to back as stored, each `stored` bytes. The
   * files are written first, then admitted (and older chunks evicted) in one transaction.
   * Never throws: a cache that cannot be filled only means reads go to the store.
   */
  fill(chunks: readonly WantedChunk[], data: Buffer, reserved: number): Promise<void> {
    const p = this.admitChunks(chunks, data, reserved);
    this.fills.add(p);
    return p.finally(() => this.fills.delete(p));
  }

  private async admitChunks(chunks: readonly WantedChunk[], data: Buffer, reserved: number): Promise<void> {
    const temps: string[] = [];
    try {
      const admissions: { id: Buffer; flags: number; size: number; temp: string }[] = [];
      const writes: Promise<void>[] = [];
      let at = 0;
      for (const c of chunks) {
        const bytes = data.subarray(at, at + c.stored);
        at += c.stored;
        if (c.stored > this.maxBytes || this.index.get(c.id)) continue;
        const temp = this.files.tempName();
        temps.push(temp);
        admissions.push({ id: c.id, flags: c.flags, size: c.stored, temp });
        writes.push(this.files.writeTemp(temp, bytes));
      }
      // All at once: the thread pool writes them in parallel, off the event loop.
      await Promise.all(writes);
      if (admissions.length === 0) return;
      const r = await this.index.admit(admissions, this.maxBytes, this.now());
      this.counts.bytesFilled += r.bytes;
      this.counts.evictions += r.evicted;
      for (const t of r.leftover) await this.files.removeTemp(t);
    } catch {
      for (const t of temps) await this.files.removeTemp(t);
    } finally {
      this.filling -= reserved;
    }
  }

  /** Drops chunks whose cached bytes failed a check. */
  async drop(ids: readonly Buffer[]): Promise<void> {
    const r = await this.index.drop(ids);
    this.counts.dropped += r.count;
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
    const ids = [...this.touched.values()];
    this.touched = new Map();
    if (ids.length === 0) return this.flushing;
    this.flushing = this.flushing.then(() => this.index.touch(ids, this.now()).catch(() => {}));
    return this.flushing;
  }

  /** Empties the cache of chunks (every process's); how many image entries it had. */
  async clear(): Promise<number> {
    const ids = [...this.index.t.chunks.getKeys()].map((k) => Buffer.from(k));
    await this.index.drop(ids);
    return this.objects.clear();
  }

  /**
   * Brings the directory and the index back into agreement after crashes: stale temporary
   * files and chunk files the index does not list are removed, index entries without a file
   * dropped. What Glance's cache clean does for its stalled and invalid files.
   */
  async clean(staleMs = 3600_000): Promise<{ files: number; entries: number }> {
    await this.flushTouches();
    const temps = await this.files.removeStaleTemps(staleMs, this.now());
    const present = new Set<string>();
    let orphans = 0;
    for await (const f of this.files.walk()) {
      const e = this.index.get(Buffer.from(f.hex, "hex"));
      if (e && e.n === f.size) {
        present.add(f.hex);
        continue;
      }
      // An orphan (a crash between rename and commit) or a torn file. One a fill renamed in
      // since is dropped too, its entry below: a miss later, never wrong bytes.
      this.files.removeSync(f.hex);
      orphans++;
    }
    const entries = await this.index.recount((hex) => present.has(hex));
    return { files: temps + orphans, entries };
  }

  /** Evicts down to the bound (after it was lowered); the chunks and bytes evicted. */
  async prune(): Promise<{ count: number; bytes: number }> {
    const r = await this.index.prune(this.maxBytes);
    this.counts.evictions += r.count;
    return r;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.touchTimer) clearTimeout(this.touchTimer);
    this.touchTimer = undefined;
    await Promise.allSettled([...this.fills]);
    await this.flushTouches();
    await this.index.close();
  }
}
