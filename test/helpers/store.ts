import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";
import { Engine } from "../../src/engine/engine.js";

/** A fresh embedded store in a temp dir; `cleanup` closes it and removes the dir. */
type OpenDirOptions = NonNullable<Parameters<typeof Engine.openDir>[1]>;

export async function tempEngine(options: OpenDirOptions = {}) {
  const dir = await mkdtemp(join(tmpdir(), "tessera-test-"));
  const engine = await Engine.openDir(dir, { durable: false, packSize: 1024 * 1024, ...options }).catch(
    async (e) => {
      await rm(dir, { recursive: true, force: true });
      throw e;
    },
  );
  return {
    dir,
    engine,
    cleanup: async () => {
      await engine.close().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of stream) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

export async function* pieces(data: Uint8Array, size = 256 * 1024): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

/**
 * For a test file: a function that makes temp stores, all closed and removed after each test,
 * plus `defer` for any other cleanup.
 */
export function tempStores() {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });
  const make = async (options: OpenDirOptions = {}) => {
    const s = await tempEngine(options);
    cleanups.push(s.cleanup);
    return s;
  };
  return Object.assign(make, { defer: (c: () => Promise<void>) => cleanups.push(c) });
}
