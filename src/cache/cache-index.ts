/**
 * The cache's index: a small LMDB environment in the cache directory (`index/`), shared by
 * every process of the node that opens the same directory. LMDB because it is the one store
 * here that is crash-safe and serializes writers across processes: space is reserved (evicting
 * first) in one write transaction, so processes admitting at once never take the total past
 * the bound, and a process killed mid-way leaves the last committed state.
 *
 * Space is accounted, and evicted least recently used first, by slab (slab-files.ts): a slab's
 * bytes are counted when they are reserved, before they are written, so the files never hold
 * more than the total says. A chunk's entry is written once its bytes are in the slab.
 *
 * | database  | key                         | value                                           |
 * | --------- | --------------------------- | ----------------------------------------------- |
 * | `chunks`  | chunk id (32 B)             | `{s: slab, o: offset, n: length, x: XXH64 hex}` |
 * | `slabs`   | slab number                 | `{b: bytes reserved, t: last use}`              |
 * | `lru`     | u64 BE last use ‖ u32 slab  | 1: the slabs in order of last use               |
 * | `members` | u32 BE slab ‖ chunk id      | 1: each slab's chunks, for its eviction         |
 * | `meta`    | `"total"`, `"next"`, `"layout"` | bytes reserved; the next slab's number; 2   |
 * | `images`  | image id                    | CachedImage (cached-images.ts)                  |
 * | `queue`   | image id                    | QueuedImage (cached-images.ts)                  |
 */
import { type Database, open, type RootDatabase } from "lmdb";
import type { SlabFiles } from "./slab-files.js";

/** A chunk's place in the cache: `n` plain bytes at `o` in slab `s`, whose XXH64 is `x`. */
export interface CacheEntry {
  s: number;
  o: number;
  n: number;
  x: string;
}

interface SlabRecord {
  b: number;
  t: number;
}

/** The version of this layout; an index without it (one file per chunk, before) is emptied. */
const LAYOUT = 2;

export interface IndexTables {
  root: RootDatabase;
  chunks: Database<CacheEntry, Buffer>;
  slabs: Database<SlabRecord, number>;
  lru: Database<number, Buffer>;
  members: Database<number, Buffer>;
  meta: Database<number, string>;
  images: Database<unknown, string>;
  queue: Database<unknown, string>;
}

export function openIndex(path: string): IndexTables {
  const root = open({ path, maxDbs: 10 });
  return {
    root,
    chunks: root.openDB<CacheEntry, Buffer>({ name: "chunks", keyEncoding: "binary", encoding: "msgpack" }),
    slabs: root.openDB<SlabRecord, number>({ name: "slabs", keyEncoding: "uint32", encoding: "msgpack" }),
    lru: root.openDB<number, Buffer>({ name: "lru", keyEncoding: "binary", encoding: "msgpack" }),
    members: root.openDB<number, Buffer>({ name: "members", keyEncoding: "binary", encoding: "msgpack" }),
    meta: root.openDB<number, string>({ name: "meta", encoding: "msgpack" }),
    images: root.openDB<unknown, string>({ name: "images", encoding: "json" }),
    queue: root.openDB<unknown, string>({ name: "queue", encoding: "json" }),
  };
}

function lruKey(t: number, slab: number): Buffer {
  const k = Buffer.allocUnsafe(12);
  k.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(t))), 0);
  k.writeUInt32BE(slab, 8);
  return k;
}

function memberKey(slab: number, id: Buffer): Buffer {
  const k = Buffer.allocUnsafe(4 + id.length);
  k.writeUInt32BE(slab, 0);
  id.copy(k, 4);
  return k;
}

/** Space reserved in a slab: `length` bytes at `offset` of slab `slab` (its descriptor `fd`). */
export interface Reservation {
  slab: number;
  fd: number;
  offset: number;
  length: number;
}

/** The slab a process appends to, as it knows it. */
export interface OpenSlab {
  slab: number;
  fd: number;
  size: number;
}

export class CacheIndex {
  /** The slabs the running write transaction evicted (write() removes their files after it). */
  private doomed: number[] | undefined;

  constructor(
    readonly t: IndexTables,
    private readonly files: SlabFiles,
  ) {}

  /** Empties an index of the earlier layout (its files are removed by the caller). True if it did. */
  async upgrade(): Promise<boolean> {
    if (this.t.meta.get("layout") === LAYOUT) return false;
    let emptied = false;
    await this.t.root.transaction(() => {
      // Again inside: another process of the node may have done it a moment ago.
      if (this.t.meta.get("layout") === LAYOUT) return;
      emptied = true;
      for (const key of [...this.t.chunks.getKeys()]) this.t.chunks.removeSync(key);
      for (const key of [...this.t.slabs.getKeys()]) this.t.slabs.removeSync(key);
      for (const key of [...this.t.lru.getKeys()]) this.t.lru.removeSync(key);
      for (const key of [...this.t.members.getKeys()]) this.t.members.removeSync(key);
      this.t.meta.putSync("total", 0);
      this.t.meta.putSync("layout", LAYOUT);
    });
    return emptied;
  }

  get(id: Buffer): CacheEntry | undefined {
    return this.t.chunks.get(id);
  }

  total(): number {
    return this.t.meta.get("total") ?? 0;
  }

  /**
   * The total as another process's last commit left it: a read outside a transaction may use
   * this process's cached snapshot, older than a commit made elsewhere.
   */
  freshTotal(): number {
    this.t.root.resetReadTxn();
    return this.total();
  }

  /** Whether slab `slab` is in the index as another process's last commit left it. */
  liveSlab(slab: number): boolean {
    this.t.root.resetReadTxn();
    return this.t.slabs.get(slab) !== undefined;
  }

  count(): number {
    return this.t.chunks.getCount();
  }

  /**
   * Reserves `length` bytes: at the end of `current` when it is still in the index and has
   * room below `slabBytes` (or is empty), else in a new slab, created here. Least recently used
   * slabs (never the one reserved in) are evicted first until the total stays within `max`.
   * Undefined when it cannot fit. `current` is closed by the caller when a new slab is returned.
   */
  async reserve(
    current: OpenSlab | undefined,
    length: number,
    slabBytes: number,
    max: number,
    now: number,
  ): Promise<{ at: Reservation; evicted: number; open: OpenSlab } | undefined> {
    let out: { at: Reservation; evicted: number; open: OpenSlab } | undefined;
    let created: OpenSlab | undefined;
    try {
      await this.write(() => {
        let open = current && this.t.slabs.get(current.slab) ? current : undefined;
        if (open && open.size > 0 && open.size + length > slabBytes) open = undefined;
        if (!open) {
          // The file first: if it cannot be made, nothing has been written (lmdb-js commits
          // what a callback wrote before it threw).
          const slab = this.t.meta.get("next") ?? 1;
          created = { slab, fd: this.files.createSync(slab), size: 0 };
          this.t.meta.putSync("next", slab + 1);
          open = created;
        }
        let total = this.total();
        let evicted = 0;
        while (total + length > max) {
          const freed = this.evictOldest(open.slab);
          if (freed === undefined) {
            this.t.meta.putSync("total", total);
            return;
          }
          total -= freed.bytes;
          evicted += freed.chunks;
        }
        const rec = this.t.slabs.get(open.slab);
        if (rec) this.t.lru.removeSync(lruKey(rec.t, open.slab));
        this.t.slabs.putSync(open.slab, { b: open.size + length, t: now });
        this.t.lru.putSync(lruKey(now, open.slab), 1);
        this.t.meta.putSync("total", total + length);
        const at = { slab: open.slab, fd: open.fd, offset: open.size, length };
        out = { at, evicted, open: { ...open, size: open.size + length } };
      });
    } finally {
      // A slab made for a reservation that did not happen is in no index: its file goes.
      if (created && !out) {
        this.files.closeFd(created.fd);
        this.files.removeSync(created.slab);
      }
    }
    return out;
  }

  /**
   * A write transaction running `fn`, then the removal of the files of the slabs it evicted:
   * after the commit, so that a crash mid-way never leaves entries whose file is gone.
   */
  private async write<T>(fn: () => T): Promise<T> {
    const doomed: number[] = [];
    this.doomed = doomed;
    let r: T;
    try {
      r = await this.t.root.transaction(() => {
        doomed.length = 0;
        this.doomed = doomed;
        return fn();
      });
    } finally {
      this.doomed = undefined;
    }
    for (const slab of doomed) this.files.removeSync(slab);
    return r;
  }

  /**
   * Records chunks whose bytes are now in the reservation's slab, if the slab is still there
   * (another process may have evicted it meanwhile: then nothing is recorded). How many were.
   */
  async commit(
    at: Reservation,
    chunks: readonly { id: Buffer; offset: number; length: number; sum: string }[],
  ) {
    let n = 0;
    await this.t.root.transaction(() => {
      n = 0;
      if (!this.t.slabs.get(at.slab)) return;
      for (const c of chunks) {
        if (this.t.chunks.get(c.id)) continue;
        this.t.chunks.putSync(c.id, { s: at.slab, o: c.offset, n: c.length, x: c.sum });
        this.t.members.putSync(memberKey(at.slab, c.id), 1);
        n++;
      }
    });
    return n;
  }

  /** Inside a transaction: drops the least recently used slab but `keep`; its bytes and chunks. */
  private evictOldest(keep?: number): { bytes: number; chunks: number } | undefined {
    for (const { key } of this.t.lru.getRange()) {
      const slab = key.readUInt32BE(8);
      if (slab === keep) continue;
      this.t.lru.removeSync(key);
      return this.evict(slab);
    }
    return undefined;
  }

  /** Inside a transaction: removes slab `slab`, its chunks' entries and its file. */
  private evict(slab: number): { bytes: number; chunks: number } {
    const rec = this.t.slabs.get(slab);
    this.t.slabs.removeSync(slab);
    let chunks = 0;
    const from = memberKey(slab, Buffer.alloc(0));
    const to = memberKey(slab + 1, Buffer.alloc(0));
    for (const key of [...this.t.members.getKeys({ start: from, end: to })]) {
      this.t.members.removeSync(key);
      this.t.chunks.removeSync(key.subarray(4));
      chunks++;
    }
    this.doomed?.push(slab);
    return { bytes: rec?.b ?? 0, chunks };
  }

  /** Marks slabs used at `now` (recency updates, batched by the caller). */
  async touch(slabs: Iterable<number>, now: number): Promise<void> {
    await this.t.root.transaction(() => {
      for (const slab of slabs) {
        const rec = this.t.slabs.get(slab);
        if (!rec || rec.t >= now) continue;
        this.t.lru.removeSync(lruKey(rec.t, slab));
        this.t.lru.putSync(lruKey(now, slab), 1);
        this.t.slabs.putSync(slab, { ...rec, t: now });
      }
    });
  }

  /**
   * Forgets chunks (bad bytes): their entries go, their bytes stay in their slabs, counted,
   * until the slab is evicted. How many were there.
   */
  async drop(ids: Iterable<Buffer>): Promise<number> {
    let count = 0;
    await this.t.root.transaction(() => {
      count = 0;
      for (const id of ids) {
        const e = this.t.chunks.get(id);
        if (!e) continue;
        this.t.chunks.removeSync(id);
        this.t.members.removeSync(memberKey(e.s, id));
        count++;
      }
    });
    return count;
  }

  /**
   * Evicts the slabs holding any of `ids` (a deleted image's chunks): their space goes, and the
   * other chunks in them with it (a later read takes those from the store). Chunks and bytes evicted.
   */
  async evictHolding(ids: Iterable<Buffer>): Promise<{ count: number; bytes: number }> {
    const r = { count: 0, bytes: 0 };
    await this.write(() => {
      r.count = 0;
      r.bytes = 0;
      let total = this.total();
      const slabs = new Set<number>();
      for (const id of ids) {
        const e = this.t.chunks.get(id);
        if (e) slabs.add(e.s);
      }
      for (const slab of slabs) {
        const rec = this.t.slabs.get(slab);
        if (rec) this.t.lru.removeSync(lruKey(rec.t, slab));
        const freed = this.evict(slab);
        total -= freed.bytes;
        r.count += freed.chunks;
        r.bytes += freed.bytes;
      }
      this.t.meta.putSync("total", total);
    });
    return r;
  }

  /** Evicts least recently used slabs until the total is within `max`; chunks and bytes evicted. */
  async prune(max: number, keep?: number): Promise<{ count: number; bytes: number }> {
    const r = { count: 0, bytes: 0 };
    await this.write(() => {
      r.count = 0;
      r.bytes = 0;
      let total = this.total();
      while (total > max) {
        const freed = this.evictOldest(keep);
        if (freed === undefined) break;
        total -= freed.bytes;
        r.count += freed.chunks;
        r.bytes += freed.bytes;
      }
      this.t.meta.putSync("total", total);
    });
    return r;
  }

  /** Evicts every slab; how many chunks it held. */
  async clear(): Promise<number> {
    let count = 0;
    await this.write(() => {
      count = 0;
      for (const slab of [...this.t.slabs.getKeys()]) count += this.evict(slab).chunks;
      for (const key of [...this.t.lru.getKeys()]) this.t.lru.removeSync(key);
      this.t.meta.putSync("total", 0);
    });
    return count;
  }

  /**
   * Brings the index and the files into agreement (after crashes, or a file removed by hand):
   * slabs whose file is missing or shorter than the index says are evicted, files of slabs the
   * index does not know removed, and the total recounted. The slabs and chunks dropped.
   */
  async recount(sizes: ReadonlyMap<number, number>): Promise<{ files: number; entries: number }> {
    const r = { files: 0, entries: 0 };
    await this.write(() => {
      r.files = 0;
      r.entries = 0;
      let total = 0;
      for (const { key, value } of [...this.t.slabs.getRange()]) {
        const size = sizes.get(key);
        if (size !== undefined && size >= value.b) {
          total += value.b;
          continue;
        }
        this.t.lru.removeSync(lruKey(value.t, key));
        r.entries += this.evict(key).chunks;
      }
      for (const slab of sizes.keys()) {
        if (this.t.slabs.get(slab)) continue;
        this.doomed?.push(slab);
        r.files++;
      }
      this.t.meta.putSync("total", total);
    });
    return r;
  }

  close(): Promise<void> {
    return this.t.root.close();
  }
}
