/** Helpers shared by the benchmarks. */
import { randomFillSync } from "node:crypto";
import { mkdir, mkdtemp, open, rm, stat } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningServer, type ServerOptions, startServer } from "../src/api/server.js";
import { DEFAULT_CONFIG } from "../src/config/server-config.js";

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

/**
 * Runs a benchmark on an engine over a fresh scratch directory: `fn` gets the engine and
 * returns its result row, printed as one JSON line; the engine is closed and the directory
 * removed whatever happens, and a failure exits non-zero.
 */
export function benchOnFreshEngine<E extends { close(): Promise<void> }>(
  dir: string,
  openEngine: (dir: string) => Promise<E>,
  fn: (engine: E) => Promise<unknown>,
): void {
  (async () => {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const engine = await openEngine(dir);
    try {
      process.stdout.write(`${JSON.stringify(await fn(engine))}\n`);
    } finally {
      await engine.close();
      await rm(dir, { recursive: true, force: true });
    }
  })().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

/**
 * A Tessera server for a benchmark on 127.0.0.1 over a fresh scratch directory, quiet and
 * without background GC or scrub; `stop` closes it and removes the directory.
 */
export async function benchServer(
  overrides: Partial<ServerOptions> = {},
): Promise<{ server: RunningServer; stop: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "tessera-bench-server-"));
  const server = await startServer({
    ...DEFAULT_CONFIG,
    osHashNodeName: "sha512",
    dataDir: dir,
    port: 0,
    logLevel: "silent",
    gcIntervalSeconds: 0,
    scrubIntervalSeconds: 0,
    ...overrides,
  });
  return {
    server,
    stop: async () => {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A TCP port free on 127.0.0.1 right now, for a server started in another process. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
