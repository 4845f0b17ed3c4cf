/**
 * The cache's data files: `slabs/N` (N the slab's number in hex), each a run of chunks'
 * plain bytes appended back to back by one process. A slab is never rewritten, only appended
 * to and, when evicted, removed whole; its number is never reused. So a reader holding a slab's
 * descriptor, or a slab's entry from an older index snapshot, reads either the chunk's bytes
 * or nothing (a removed slab is a miss), never another chunk's.
 *
 * Why slabs and not a file per chunk: a file per chunk cost a path lookup, an open, a stat
 * and a close per ~64 KiB chunk, and one index transaction plus a rename per chunk to admit;
 * a warm read of a 330 MB image from the cache ran at ×0.64 of a filesystem store's
 * (bench/cache.ts, 741 against 1,163 MB/s). Chunks admitted together (a segment of a read)
 * lie together in a slab, so a later read of the same segment is one pread, as from a pack.
 */
import { closeSync, openSync, read, unlinkSync, writevSync } from "node:fs";
import { mkdir, readdir, stat } from "node:fs/promises";
import { join } from "node:path";

/** Descriptors kept open for reading: slabs in use are few (maxBytes / slab size). */
const OPEN_READERS = 64;

/** A read descriptor, with the reads using it; closed when forgotten and no longer used. */
interface Reader {
  fd: number;
  busy: number;
  doomed: boolean;
}

function readAt(fd: number, into: Buffer, at: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, into, at, length, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

export class SlabFiles {
  readonly dir: string;
  /** Read descriptors, least recently used first (a Map keeps insertion order). */
  private readers = new Map<number, Reader>();

  constructor(root: string) {
    this.dir = join(root, "slabs");
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  pathOf(slab: number): string {
    return join(this.dir, slab.toString(16).padStart(8, "0"));
  }

  /**
   * Creates slab `slab`'s file and opens it for appending; the descriptor stays with the
   * creating process, which alone writes it (synchronously: inside the index transaction that
   * allocates the slab, so that a slab in the index always has its file).
   */
  createSync(slab: number): number {
    // "w": a file of this number can only be left from an index emptied since (never reused).
    return openSync(this.pathOf(slab), "w");
  }

  /**
   * Writes `parts` at `offset` through `fd` (a slab this process created). Synchronous: the
   * bytes are in hand and go to the page cache; the thread pool's round trip cost more than
   * the copy for segments of a few MiB.
   */
  writeAt(fd: number, parts: readonly Buffer[], offset: number): void {
    let at = offset;
    let rest = parts.filter((p) => p.length > 0);
    while (rest.length > 0) {
      let n = writevSync(fd, rest, at);
      at += n;
      const left: Buffer[] = [];
      for (const p of rest) {
        if (n >= p.length) {
          n -= p.length;
          continue;
        }
        left.push(n > 0 ? p.subarray(n) : p);
        n = 0;
      }
      rest = left;
    }
  }

  closeFd(fd: number): void {
    try {
      closeSync(fd);
    } catch {
      // Already closed: nothing held.
    }
  }

  /**
   * Reads `length` bytes of slab `slab` at `offset` into `into` at `at`, on the thread pool as
   * a filesystem store's reads are (so that reading ahead overlaps the socket's writes; read
   * synchronously, a warm download stalled while each read-ahead burst ran). False when the
   * slab is gone or shorter: a miss, never an error (another process may have evicted it).
   */
  async readInto(slab: number, offset: number, length: number, into: Buffer, at: number): Promise<boolean> {
    const r = this.reader(slab);
    if (r === undefined) return false;
    r.busy++;
    try {
      let done = 0;
      while (done < length) {
        const n = await readAt(r.fd, into, at + done, length - done, offset + done);
        if (n === 0) return false;
        done += n;
      }
      return true;
    } catch {
      this.forget(slab);
      return false;
    } finally {
      r.busy--;
      if (r.doomed && r.busy === 0) this.closeFd(r.fd);
    }
  }

  private reader(slab: number): Reader | undefined {
    const r = this.readers.get(slab);
    if (r !== undefined) {
      this.readers.delete(slab);
      this.readers.set(slab, r);
      return r;
    }
    let fd: number;
    try {
      fd = openSync(this.pathOf(slab), "r");
    } catch {
      return undefined;
    }
    const opened = { fd, busy: 0, doomed: false };
    this.readers.set(slab, opened);
    if (this.readers.size > OPEN_READERS) {
      const [oldest] = this.readers.keys();
      this.forget(oldest as number);
    }
    return opened;
  }

  /**
   * Closes this process's read descriptor of `slab`, if it has one, once no read uses it: a
   * descriptor closed under a read in flight could be reused for another file meanwhile.
   */
  forget(slab: number): void {
    const r = this.readers.get(slab);
    if (r === undefined) return;
    this.readers.delete(slab);
    r.doomed = true;
    if (r.busy === 0) this.closeFd(r.fd);
  }

  /** Closes the read descriptors of slabs `live` says are gone: another process evicted them. */
  forgetGone(live: (slab: number) => boolean): void {
    for (const slab of [...this.readers.keys()]) if (!live(slab)) this.forget(slab);
  }

  /** Removes slab `slab`'s file (synchronously: inside the transaction that evicts it). */
  removeSync(slab: number): void {
    this.forget(slab);
    try {
      unlinkSync(this.pathOf(slab));
    } catch {
      // Already gone (a crash between transaction and unlink, or a clean): nothing to free.
    }
  }

  /** Every slab file present, as its number and size. */
  async *walk(): AsyncGenerator<{ slab: number; size: number }> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!/^[0-9a-f]{8}$/.test(name)) continue;
      const slab = Number.parseInt(name, 16);
      const st = await stat(join(this.dir, name)).catch(() => undefined);
      if (st?.isFile()) yield { slab, size: st.size };
    }
  }

  closeAll(): void {
    for (const slab of [...this.readers.keys()]) this.forget(slab);
  }
}
