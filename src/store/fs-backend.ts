import { randomBytes } from "node:crypto";
import { type FileHandle, mkdir, open, readdir, rename, rm, stat, unlink } from "node:fs/promises";
import { basename, dirname, join, relative, sep } from "node:path";
import { CorruptDataError, NotFoundError, StoreFullError } from "../errors.js";
import { assertValidName, type ObjectBackend, type ObjectInfo } from "./backend.js";
import { openDirect, writeDirect } from "./direct-write.js";
import { ReadHandles } from "./read-handles.js";

export interface FsBackendOptions {
  /** fsync each object and its directory before put resolves (default true). */
  durable?: boolean;
  /**
   * Write objects with O_DIRECT where the filesystem allows it (default false): saves a kernel
   * copy per byte, but keeps new packs out of the page cache, where a new image's first
   * downloads would find them. See direct-write.ts and the store setting `directWrites`.
   */
  directIo?: boolean;
}

const TMP_PREFIX = ".tmp-";

/**
 * Objects as files under a root directory. Puts write a temporary file in the target
 * directory, fsync it, rename it into place and fsync the directory, so a crash leaves either
 * the old state or the whole new object (plus, at worst, a temporary file that list() skips).
 */
export class FsBackend implements ObjectBackend {
  private readonly durable: boolean;
  private directIo: boolean;
  private readonly madeDirs = new Set<string>();
  private readonly handles = new ReadHandles();

  constructor(
    readonly root: string,
    options: FsBackendOptions = {},
  ) {
    this.durable = options.durable ?? true;
    this.directIo = options.directIo ?? false;
  }

  private path(name: string): string {
    assertValidName(name);
    return join(this.root, ...name.split("/"));
  }

  async put(name: string, parts: readonly Uint8Array[]): Promise<void> {
    try {
      const final = this.path(name);
      const dir = dirname(final);
      await this.ensureDir(dir);
      try {
        await this.writeFile(dir, final, parts, this.directIo);
      } catch (e) {
        // Some filesystems accept O_DIRECT at open and refuse the writes; use buffered writes.
        if (!this.directIo || (e as NodeJS.ErrnoException).code !== "EINVAL") throw e;
        this.directIo = false;
        await this.writeFile(dir, final, parts, false);
      }
      if (this.durable) await fsyncDir(dir);
    } catch (e) {
      // The temporary file is gone already (writeFile removes it): nothing half-written stays.
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOSPC" || code === "EDQUOT") {
        throw new StoreFullError(`Image storage media is full: no space left in ${this.root}`, e);
      }
      throw e;
    }
  }

  /** Writes a temporary file beside `final` and renames it into place. */
  private async writeFile(dir: string, final: string, parts: readonly Uint8Array[], direct: boolean) {
    const tmp = join(dir, `${TMP_PREFIX}${randomBytes(8).toString("hex")}`);
    let fh: FileHandle | undefined;
    try {
      fh = direct ? await openDirect(tmp) : undefined;
      if (fh) {
        await writeDirect(fh, parts);
      } else {
        if (direct) this.directIo = false; // the filesystem refused O_DIRECT; don't ask again
        fh = await open(tmp, "wx");
        await writeAll(fh, parts);
      }
      if (this.durable) await fh.datasync();
      await fh.close();
      fh = undefined;
      await rename(tmp, final);
      this.handles.forget(final);
    } catch (e) {
      await fh?.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw e;
    }
  }

  async get(name: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const p = this.path(name);
    try {
      return await this.handles.use(p, async (fh) => {
        const buf = into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
          if (bytesRead === 0) throw new CorruptDataError(`object ${name} ends before ${offset + length}`);
          got += bytesRead;
        }
        return buf;
      });
    } catch (e) {
      if (isNoEnt(e)) throw new NotFoundError(`object ${name}`);
      throw e;
    }
  }

  async stat(name: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.path(name));
      return { name, size: s.size };
    } catch (e) {
      if (isNoEnt(e)) return undefined;
      throw e;
    }
  }

  async delete(name: string): Promise<void> {
    const p = this.path(name);
    this.handles.forget(p);
    await rm(p, { force: true });
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk from the deepest directory the prefix names completely.
    const slash = prefix.lastIndexOf("/");
    const base = slash >= 0 ? prefix.slice(0, slash) : "";
    if (base) assertValidName(base);
    const start = base ? join(this.root, ...base.split("/")) : this.root;
    for await (const file of walk(start)) {
      const name = relative(this.root, file).split(sep).join("/");
      if (!name.startsWith(prefix)) continue;
      const s = await stat(file).catch(() => undefined);
      if (s) yield { name, size: s.size };
    }
  }

  /**
   * Temporary files of puts that never finished (the process died between creating and
   * renaming one): on a store several nodes share, every node's crashes leave them there.
   */
  async sweepLeftovers(olderThanMs: number): Promise<number> {
    const before = Date.now() - olderThanMs;
    let removed = 0;
    for await (const file of walk(this.root, true)) {
      if (!basename(file).startsWith(TMP_PREFIX)) continue;
      const s = await stat(file).catch(() => undefined);
      if (!s || s.mtimeMs >= before) continue;
      await rm(file, { force: true });
      removed++;
    }
    return removed;
  }

  async close(): Promise<void> {
    await this.handles.closeAll();
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.madeDirs.has(dir)) return;
    const created = await mkdir(dir, { recursive: true });
    // A new directory's entry in its parent must be durable too, or a crash loses the object.
    if (created && this.durable) {
      let d = dir;
      while (d.length >= created.length) {
        await fsyncDir(dirname(d));
        d = dirname(d);
      }
    }
    this.madeDirs.add(dir);
  }
}

async function writeAll(fh: FileHandle, parts: readonly Uint8Array[]): Promise<void> {
  let pending = parts.filter((p) => p.length > 0);
  while (pending.length > 0) {
    const { bytesWritten } = await fh.writev(pending);
    let n = bytesWritten;
    const rest: Uint8Array[] = [];
    for (const p of pending) {
      if (n >= p.length) n -= p.length;
      else {
        rest.push(n > 0 ? p.subarray(n) : p);
        n = 0;
      }
    }
    pending = rest;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Every file under `dir`; temporary files too when `temporaries`, else not. */
async function* walk(dir: string, temporaries = false): AsyncIterable<string> {
  let entries: import("node:fs").Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (isNoEnt(e)) return;
    throw e;
  }
  for (const e of entries) {
    if (e.name.startsWith(TMP_PREFIX) && !temporaries) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p, temporaries);
    else if (e.isFile()) yield p;
  }
}

function isNoEnt(e: unknown): boolean {
  return (e as NodeJS.ErrnoException)?.code === "ENOENT";
}
