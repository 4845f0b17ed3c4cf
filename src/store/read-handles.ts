import { type FileHandle, open } from "node:fs/promises";

interface Entry {
  handle: Promise<FileHandle>;
  users: number;
  evicted: boolean;
}

/**
 * Keeps the most recently read files open. A download reads a pack in many ranged reads, and
 * an open and a close per read were measured at ~185 ms of main-thread time per GB read.
 * Packs are write-once, so a cached handle never sees stale bytes; a put or delete of a name
 * drops its handle (`forget`) so this process never reads a replaced file through an old one.
 */
export class ReadHandles {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly max = 64) {}

  /** Runs `fn` with an open read handle of `path`; rejects as open() would (e.g. ENOENT). */
  async use<T>(path: string, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    let e = this.entries.get(path);
    if (e) {
      this.entries.delete(path); // re-insert: Map order is the LRU order
      this.entries.set(path, e);
    } else {
      const entry: Entry = { handle: open(path, "r"), users: 0, evicted: false };
      entry.handle.catch(() => {
        if (this.entries.get(path) === entry) this.entries.delete(path);
      });
      this.entries.set(path, entry);
      e = entry;
      this.evictOld();
    }
    e.users++;
    try {
      return await fn(await e.handle);
    } finally {
      e.users--;
      if (e.evicted && e.users === 0) void closeQuietly(e);
    }
  }

  /** Drops the handle of `path`, closing it once no read uses it. */
  forget(path: string): void {
    const e = this.entries.get(path);
    if (!e) return;
    this.entries.delete(path);
    e.evicted = true;
    if (e.users === 0) void closeQuietly(e);
  }

  async closeAll(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(
      all.map((e) => {
        e.evicted = true;
        return e.users === 0 ? closeQuietly(e) : undefined;
      }),
    );
  }

  private evictOld(): void {
    for (const [path] of this.entries) {
      if (this.entries.size <= this.max) return;
      this.forget(path);
    }
  }
}

async function closeQuietly(e: Entry): Promise<void> {
  try {
    await (await e.handle).close();
  } catch {
    // a handle that never opened, or is already closed
  }
}
