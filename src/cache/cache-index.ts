/**
 * The cache's index: a small LMDB environment in the cache directory (`index/`), shared by
 * every process of the node that opens the same directory. LMDB because it is the one store
 * here that is crash-safe and serializes writers across processes: admission and eviction run
 * in one write transaction, so processes admitting at once never take the total past the
 * bound, and a process killed mid-way leaves the last committed state.
 *
 * | database | key                              | value                                        |
 * | -------- | -------------------------------- | -------------------------------------------- |
 * | `chunks` | chunk id (32 B)                  | `{n: stored size, f: pack flags, t: last use}` |
 * | `lru`    | u64 BE last use (ms) ‖ chunk id  | 1: the chunks in order of last use           |
 * | `meta`   | `"total"`                        | bytes of the chunks admitted                 |
 * | `images` | image id                         | CachedImage (cached-images.ts)               |
 * | `queue`  | image id                         | QueuedImage (cached-images.ts)               |
 */
import { type Database, open, type RootDatabase } from "lmdb";
import type { CacheFiles } from "./cache-files.js";

export interface CacheEntry {
  /** Bytes of the file: the chunk as stored in its pack (raw, or its zstd frame). */
  n: number;
  /** The pack entry's flags (CHUNK_FLAG_ZSTD). */
  f: number;
  /** Last use, ms since the epoch. */
  t: number;
}

/** A chunk offered for admission, its file already written under a temporary name. */
export interface Admission {
  id: Buffer;
  flags: number;
  size: number;
  temp: string;
}

export interface AdmitResult {
  admitted: number;
  bytes: number;
  evicted: number;
  evictedBytes: number;
}

export interface IndexTables {
  root: RootDatabase;
  chunks: Database<CacheEntry, Buffer>;
  lru: Database<number, Buffer>;
  meta: Database<number, string>;
  images: Database<unknown, string>;
  queue: Database<unknown, string>;
}

export function openIndex(path: string): IndexTables {
  const root = open({ path, maxDbs: 8 });
  return {
    root,
    chunks: root.openDB<CacheEntry, Buffer>({ name: "chunks", keyEncoding: "binary", encoding: "msgpack" }),
    lru: root.openDB<number, Buffer>({ name: "lru", keyEncoding: "binary", encoding: "msgpack" }),
    meta: root.openDB<number, string>({ name: "meta", encoding: "msgpack" }),
    images: root.openDB<unknown, string>({ name: "images", encoding: "json" }),
    queue: root.openDB<unknown, string>({ name: "queue", encoding: "json" }),
  };
}

function lruKey(t: number, id: Buffer): Buffer {
  const k = Buffer.allocUnsafe(8 + id.length);
  k.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(t))), 0);
  id.copy(k, 8);
  return k;
}

export class CacheIndex {
  constructor(
    readonly t: IndexTables,
    private readonly files: CacheFiles,
  ) {}

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

  count(): number {
    return this.t.chunks.getCount();
  }

  /**
   * Admits `items` in one transaction, each after evicting the least recently used chunks until
   * it fits under `max`: their files are removed and the new ones renamed into place before
   * the commit. Items already present, or larger than `max`, are skipped (the caller removes
   * their temporary files: every temp not admitted is listed in `leftover`).
   */
  async admit(items: Admission[], max: number, now: number): Promise<AdmitResult & { leftover: string[] }> {
    const r = { admitted: 0, bytes: 0, evicted: 0, evictedBytes: 0, leftover: [] as string[] };
    await this.t.root.transaction(() => {
      let total = this.total();
      for (const it of items) {
        if (it.size > max || this.t.chunks.get(it.id)) {
          r.leftover.push(it.temp);
          continue;
        }
        while (total + it.size > max) {
          const freed = this.evictOldest();
          if (freed === undefined) break;
          total -= freed;
          r.evicted++;
          r.evictedBytes += freed;
        }
        if (total + it.size > max || !this.files.installSync(it.temp, it.id.toString("hex"), it.size)) {
          r.leftover.push(it.temp);
          continue;
        }
        this.t.chunks.putSync(it.id, { n: it.size, f: it.flags, t: now });
        this.t.lru.putSync(lruKey(now, it.id), 1);
        total += it.size;
        r.admitted++;
        r.bytes += it.size;
      }
      this.t.meta.putSync("total", total);
    });
    return r;
  }

  /** Inside a transaction: drops the least recently used chunk and its file; its size, or undefined. */
  private evictOldest(): number | undefined {
    for (const { key } of this.t.lru.getRange({ limit: 1 })) {
      const id = key.subarray(8);
      this.t.lru.removeSync(key);
      const e = this.t.chunks.get(id);
      if (!e) return 0;
      this.t.chunks.removeSync(id);
      this.files.removeSync(id.toString("hex"));
      return e.n;
    }
    return undefined;
  }

  /** Marks chunks used at `now` (recency updates, batched by the caller). */
  async touch(ids: Iterable<Buffer>, now: number): Promise<void> {
    await this.t.root.transaction(() => {
      for (const id of ids) {
        const e = this.t.chunks.get(id);
        if (!e || e.t >= now) continue;
        this.t.lru.removeSync(lruKey(e.t, id));
        this.t.lru.putSync(lruKey(now, id), 1);
        this.t.chunks.putSync(id, { ...e, t: now });
      }
    });
  }

  /** Drops chunks and their files (bad bytes, a delete); returns how many and their bytes. */
  async drop(ids: Iterable<Buffer>): Promise<{ count: number; bytes: number }> {
    const r = { count: 0, bytes: 0 };
    await this.t.root.transaction(() => {
      let total = this.total();
      for (const id of ids) {
        const e = this.t.chunks.get(id);
        if (!e) continue;
        this.t.lru.removeSync(lruKey(e.t, id));
        this.t.chunks.removeSync(id);
        this.files.removeSync(id.toString("hex"));
        total -= e.n;
        r.count++;
        r.bytes += e.n;
      }
      this.t.meta.putSync("total", total);
    });
    return r;
  }

  /** Evicts least recently used chunks until the total is within `max` (after a smaller bound). */
  async prune(max: number): Promise<{ count: number; bytes: number }> {
    const r = { count: 0, bytes: 0 };
    await this.t.root.transaction(() => {
      let total = this.total();
      while (total > max) {
        const freed = this.evictOldest();
        if (freed === undefined) break;
        total -= freed;
        r.count++;
        r.bytes += freed;
      }
      this.t.meta.putSync("total", total);
    });
    return r;
  }

  /** Chunk ids in the index whose files are missing, and the total recounted from the index. */
  async recount(present: (hex: string) => boolean): Promise<number> {
    let dropped = 0;
    await this.t.root.transaction(() => {
      let total = 0;
      for (const { key, value } of this.t.chunks.getRange()) {
        if (present(key.toString("hex"))) {
          total += value.n;
          continue;
        }
        this.t.lru.removeSync(lruKey(value.t, key));
        this.t.chunks.removeSync(key);
        dropped++;
      }
      this.t.meta.putSync("total", total);
    });
    return dropped;
  }

  close(): Promise<void> {
    return this.t.root.close();
  }
}
