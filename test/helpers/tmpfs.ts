import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A small tmpfs of `mib` MiB mounted on a temp dir, for filling a disk to the last byte. Needs
 * root (or CAP_SYS_ADMIN): where mounting is refused, `reason` says why and tests skip, except
 * in CI, where the mount must work.
 */
export function mountTmpfs(mib: number): { dir: string; unmount: () => void } | { reason: string } {
  const dir = mkdtempSync(join(tmpdir(), "tessera-tmpfs-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${mib}m`, "tmpfs", dir], { stdio: "pipe" });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    const reason = `cannot mount a tmpfs (${String((e as { stderr?: Buffer }).stderr ?? e).trim()}): run as root`;
    if (process.env.CI) throw new Error(`${reason}; CI must run the full-disk tests`);
    return { reason };
  }
  return {
    dir,
    unmount: () => {
      execFileSync("umount", ["-l", dir], { stdio: "pipe" });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Fills the filesystem of `dir` to the last byte with a file; returns its path. */
export function fillDisk(dir: string): string {
  const file = join(dir, "filler");
  try {
    execFileSync("dd", ["if=/dev/zero", `of=${file}`, "bs=64k"], { stdio: "pipe" });
  } catch {
    // dd ends with ENOSPC: that is the point
  }
  try {
    execFileSync("dd", ["if=/dev/zero", `of=${file}.tail`, "bs=512"], { stdio: "pipe" });
  } catch {
    // the last blocks
  }
  return file;
}
