/**
 * A few MiB of disk held back for the catalog. On a full disk every LMDB commit that needs a new
 * page fails, deletes included, and deleting images (then collecting garbage) is how an operator
 * frees space: so the catalog keeps this file beside its data, gives it up the first time a
 * commit that frees space is refused for lack of it (that commit is then tried again), and takes
 * it back once there is room. Commits that only add (creates, uploads) never use it.
 */
import { rmSync, statfsSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const RESERVE_BYTES = 8 * 1024 * 1024;
const RETAKE_EVERY_MS = 60_000;

export class SpaceReserve {
  private readonly file: string;
  private held = false;
  private lastTry = 0;

  constructor(dir: string) {
    this.file = join(dir, "space-reserve");
    this.take();
  }

  /** Gives the space up; false when there was none to give. */
  release(): boolean {
    if (!this.held) return false;
    try {
      unlinkSync(this.file);
    } catch {
      // already gone: its space is free either way
    }
    this.held = false;
    return true;
  }

  /** Takes the space back if it is not held and the disk has room for it twice over. */
  retake(): void {
    if (this.held || Date.now() - this.lastTry < RETAKE_EVERY_MS) return;
    this.take();
  }

  private take(): void {
    this.lastTry = Date.now();
    try {
      // Already there from an earlier run (its blocks written): held, whatever room is left.
      if ((statSync(this.file, { throwIfNoEntry: false })?.blocks ?? 0) >= RESERVE_BYTES / 512) {
        this.held = true;
        return;
      }
      const fs = statfsSync(join(this.file, ".."));
      if (fs.bavail * fs.bsize < 2 * RESERVE_BYTES) return;
      // Written, not truncated to size: a sparse file would hold nothing back.
      writeFileSync(this.file, Buffer.alloc(RESERVE_BYTES));
      this.held = true;
    } catch {
      // A write cut short holds part of the space and is no reserve: let it go.
      rmSync(this.file, { force: true });
      this.held = false;
    }
  }
}
