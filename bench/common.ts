/** Helpers shared by the benchmarks. */
import { randomFillSync } from "node:crypto";
import { open, stat } from "node:fs/promises";

const MiB = 1024 * 1024;

/** Writes `bytes` of random data to `path` (kept if a file of that size is already there). */
export async function makeRandomFile(path: string, bytes: number): Promise<void> {
  if ((await stat(path).catch(() => undefined))?.size === bytes) return;
  const fh = await open(path, "w");
  const buf = Buffer.allocUnsafe(16 * MiB);
  for (let at = 0; at < bytes; at += buf.length) {
    randomFillSync(buf);
    await fh.write(buf, 0, Math.min(buf.length, bytes - at));
  }
  await fh.close();
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
