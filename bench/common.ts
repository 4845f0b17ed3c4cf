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

export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

export async function timed<T>(fn: () => Promise<T> | T): Promise<{ s: number; value: T }> {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { s: Number(process.hrtime.bigint() - t0) / 1e9, value };
}

/** Decimal megabytes per second, one decimal. */
export function mbps(bytes: number, s: number): number {
  return Math.round((bytes / 1e6 / s) * 10) / 10;
}

export function ratio(a: number, b: number): number {
  return Math.round((a / b) * 100) / 100;
}
