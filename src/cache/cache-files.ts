/**
 * The chunk files of the cache directory: `chunks/XX/YY/ID` (ID the chunk id in hex, fanned out
 * by its first two bytes so that no directory grows past a few thousand entries), and
 * `tmp/` for files being written. A file is written under a temporary name and renamed into
 * place only inside the index transaction that admits it (cache-index.ts), so a chunk file
 * under its final name is always whole. Reads treat a missing file, or one of the wrong size,
 * as a miss: another process may have evicted it a moment before.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
} from "node:fs";
import { mkdir, readdir, rm, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";

export class CacheFiles {
  readonly chunksDir: string;
  readonly tmpDir: string;

  constructor(readonly dir: string) {
    this.chunksDir = join(dir, "chunks");
    this.tmpDir = join(dir, "tmp");
  }

  async init(): Promise<void> {
    await mkdir(this.chunksDir, { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
  }

  pathOf(hex: string): string {
    return join(this.chunksDir, hex.slice(0, 2), hex.slice(2, 4), hex);
  }

  /** A new temporary file's path. */
  tempName(): string {
    return join(this.tmpDir, `${process.pid}-${randomBytes(8).toString("hex")}`);
  }

  /** Writes `bytes` to the temporary file `path`. */
  async writeTemp(path: string, bytes: Uint8Array): Promise<void> {
    await writeFile(path, bytes);
  }

  /**
   * Moves a temporary file into place as chunk `hex` of `size` bytes (synchronously: it runs
   * inside an index transaction). False when it could not (the temporary file is gone). A
   * transaction's callback may run again after a retry: a temporary file already moved into
   * place by the first run counts as installed, so that the chunk is indexed and not leaked.
   */
  installSync(temp: string, hex: string, size: number): boolean {
    const to = this.pathOf(hex);
    try {
      renameSync(temp, to);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") return false;
    }
    if (!existsSync(temp)) return sizeOf(to) === size;
    try {
      mkdirSync(join(this.chunksDir, hex.slice(0, 2), hex.slice(2, 4)), { recursive: true });
      renameSync(temp, to);
      return true;
    } catch {
      return false;
    }
  }

  /** Removes chunk `hex`'s file, if there (synchronously: inside an index transaction). */
  removeSync(hex: string): void {
    try {
      unlinkSync(this.pathOf(hex));
    } catch {
      // Already gone (a crash between transaction and unlink, or a clean): nothing to free.
    }
  }

  async removeTemp(path: string): Promise<void> {
    await rm(path, { force: true });
  }

  /**
   * Reads chunk `hex` (`size` bytes) into `into` at `at`. False when the file is missing or not
   * of that size: a miss, never an error.
   *
   * Synchronous on purpose: a chunk file is small and, on a warm cache, in the page cache, so
   * its open, stat, read and close cost less here than the four trips through libuv's thread
   * pool they took asynchronously. Measured (bench/cache.ts, no compression, fast check): a
   * warm-cache download from radosgw went from 311 to 355 MB/s. The price: a cache on a slow
   * disk, read cold, holds the event loop while the device answers.
   */
  readInto(hex: string, size: number, into: Buffer, at: number): boolean {
    let fd: number;
    try {
      fd = openSync(this.pathOf(hex), "r");
    } catch {
      return false;
    }
    try {
      if (fstatSync(fd).size !== size) return false;
      let done = 0;
      while (done < size) {
        const n = readSync(fd, into, at + done, size - done, done);
        if (n === 0) return false;
        done += n;
      }
      return true;
    } catch {
      return false;
    } finally {
      closeSync(fd);
    }
  }

  /** Every chunk file present, as its hex id and size. */
  async *walk(): AsyncGenerator<{ hex: string; size: number }> {
    for (const a of await readdirOrNone(this.chunksDir)) {
      for (const b of await readdirOrNone(join(this.chunksDir, a))) {
        for (const hex of await readdirOrNone(join(this.chunksDir, a, b))) {
          const st = await stat(join(this.chunksDir, a, b, hex)).catch(() => undefined);
          if (st?.isFile()) yield { hex, size: st.size };
        }
      }
    }
  }

  /** Temporary files older than `ms` (left by a process that died while filling): removed. */
  async removeStaleTemps(ms: number, now: number): Promise<number> {
    let n = 0;
    for (const name of await readdirOrNone(this.tmpDir)) {
      const path = join(this.tmpDir, name);
      const st = await stat(path).catch(() => undefined);
      if (st && now - st.mtimeMs > ms) {
        await unlink(path).catch(() => {});
        n++;
      }
    }
    return n;
  }
}

async function readdirOrNone(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

function sizeOf(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}
