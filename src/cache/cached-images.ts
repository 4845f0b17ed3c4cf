/**
 * What the cache knows of whole objects, for the cache API: the objects read whole through it
 * or prefetched (each under a name, the image id, with hits and times as Glance reports
 * them), and the queue of names waiting to be prefetched. Both live in the cache's index, so
 * every process of the node sees and works the same queue. Whether an entry is still cached
 * (all its chunks present) is decided by the caller, who can read the object's manifest.
 */
import type { IndexTables } from "./cache-index.js";

export interface CachedObject {
  /** The object (manifest id, hex) the name's data was when it was cached. */
  object: string;
  size: number;
  hits: number;
  /** Seconds since the epoch, as Glance reports them. */
  lastAccessed: number;
  lastModified: number;
}

export interface QueuedName {
  /** When it was queued, ms since the epoch (the queue's order). */
  at: number;
  /** The process prefetching it, and until when its claim holds. */
  claim?: { by: string; until: number };
}

export class CachedObjects {
  constructor(private readonly t: IndexTables) {}

  get(name: string): CachedObject | undefined {
    return this.t.images.get(name) as CachedObject | undefined;
  }

  list(): { name: string; entry: CachedObject }[] {
    return [...this.t.images.getRange()].map(({ key, value }) => ({
      name: key,
      entry: value as CachedObject,
    }));
  }

  /**
   * Records that `name` (object `object`, `size` bytes) was read, `whole` or a range of it;
   * `cachedBefore`: whether all its chunks were cached when the read began. A read of a
   * cached entry is a hit; a whole read otherwise (re)fills it: a new entry, or the same
   * entry refreshed (its hits kept) when only some of its chunks had been evicted.
   */
  async noteRead(
    name: string,
    object: string,
    size: number,
    read: { whole: boolean; cachedBefore: boolean },
    nowMs: number,
  ): Promise<void> {
    const now = nowMs / 1000;
    await this.t.root.transaction(() => {
      const e = this.get(name);
      const same = e !== undefined && e.object === object;
      if (same && read.cachedBefore) {
        this.t.images.putSync(name, { ...e, hits: e.hits + 1, lastAccessed: now });
      } else if (read.whole) {
        const hits = same ? e.hits : 0;
        this.t.images.putSync(name, { object, size, hits, lastAccessed: now, lastModified: now });
      }
    });
  }

  async remove(name: string): Promise<boolean> {
    return this.t.root.transaction(() => this.t.images.removeSync(name));
  }

  /** Forgets every entry; how many there were. */
  async clear(): Promise<number> {
    return this.t.root.transaction(() => {
      let n = 0;
      for (const key of this.t.images.getKeys()) {
        this.t.images.removeSync(key);
        n++;
      }
      return n;
    });
  }

  /** The names queued, oldest first. */
  queued(): string[] {
    return [...this.t.queue.getRange()]
      .map(({ key, value }) => ({ key, at: (value as QueuedName).at }))
      .sort((a, b) => a.at - b.at || (a.key < b.key ? -1 : 1))
      .map((q) => q.key);
  }

  /** Queues `name` for prefetching (kept where it is if already queued). */
  async enqueue(name: string, nowMs: number): Promise<void> {
    await this.t.root.transaction(() => {
      if (this.t.queue.get(name) === undefined) this.t.queue.putSync(name, { at: nowMs });
    });
  }

  async dequeue(name: string): Promise<boolean> {
    return this.t.root.transaction(() => this.t.queue.removeSync(name));
  }

  async clearQueue(): Promise<number> {
    return this.t.root.transaction(() => {
      let n = 0;
      for (const key of this.t.queue.getKeys()) {
        this.t.queue.removeSync(key);
        n++;
      }
      return n;
    });
  }

  /**
   * Claims the oldest queued name no live process is prefetching, for `ms`: one process works
   * each name however many run. Undefined when there is none.
   */
  async claimNext(by: string, ms: number, nowMs: number): Promise<string | undefined> {
    return this.t.root.transaction(() => {
      for (const name of this.queued()) {
        const q = this.t.queue.get(name) as QueuedName;
        if (q.claim && q.claim.until > nowMs) continue;
        this.t.queue.putSync(name, { at: q.at, claim: { by, until: nowMs + ms } });
        return name;
      }
      return undefined;
    });
  }
}
