/**
 * One server per data directory. Two would both treat the other's `saving` images as
 * interrupted and reset them at start, and race on the same packs. Node has no flock, so the
 * lock is a pid file created exclusively; a file left by a process that is gone (a crash,
 * SIGKILL) is taken over.
 */
import { open, readFile, rm, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { TesseraError } from "../errors.js";

/** The file a running server leaves its URL in, beside its lock (for `tessera gc`). */
export const SERVER_URL_FILE = "tessera.url";

/** The file a running server leaves its local admin token in (mode 0600), for the same tools. */
export const LOCAL_TOKEN_FILE = "tessera.token";

export class DirInUseError extends TesseraError {
  constructor(dir: string, pid: number) {
    super("dir_in_use", `${dir} is in use by another Tessera server (pid ${pid})`);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Lock files this process holds: a file with our own pid that is not here is stale (pid reuse). */
const held = new Set<string>();

/** Takes the lock on `dir` (which must exist); resolves with its release. */
export async function lockDir(dir: string): Promise<() => Promise<void>> {
  const path = resolve(dir, "tessera.pid");
  if (held.has(path)) throw new DirInUseError(dir, process.pid);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, "wx");
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      held.add(path);
      return async () => {
        held.delete(path);
        await rm(path, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const pid = Number((await readFile(path, "utf8").catch(() => "")).trim());
      if (pid > 0 && pid !== process.pid && alive(pid)) throw new DirInUseError(dir, pid);
      // No pid yet: another server is between creating the file and writing it, unless that
      // was long enough ago to be a crash.
      const age = Date.now() - ((await stat(path).catch(() => undefined))?.mtimeMs ?? 0);
      if (!(pid > 0) && age < 10_000) throw new DirInUseError(dir, 0);
      await rm(path, { force: true });
    }
  }
  throw new DirInUseError(dir, 0);
}
