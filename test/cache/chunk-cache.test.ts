/**
 * The node-local chunk cache on real files in a temporary directory: hits and misses, least
 * recently used eviction, the bound held (also with a second process admitting at once), the
 * index kept across a reopen, and a file vanished under a reader read as a miss.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, stat, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ChunkCache, type WantedChunk } from "../../src/cache/chunk-cache.js";

const CHILD = new URL("../helpers/cache-child.mjs", import.meta.url).pathname;

let dir = "";
let clock = 1_000;
const now = () => clock;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tessera-cache-"));
  clock = 1_000;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function chunk(name: string, size: number): { want: WantedChunk; bytes: Buffer } {
  const id = Buffer.alloc(32);
  id.write(name);
  return { want: { id, stored: size, flags: 0 }, bytes: randomBytes(size) };
}

async function put(cache: ChunkCache, c: { want: WantedChunk; bytes: Buffer }): Promise<void> {
  expect(cache.reserveFill(c.bytes.length)).toBe(true);
  await cache.fill([c.want], c.bytes, c.bytes.length);
}

async function filesBytes(): Promise<number> {
  let total = 0;
  for (const e of await readdir(join(dir, "chunks"), { recursive: true, withFileTypes: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

describe("the chunk cache", () => {
  it("returns what was filled, counts a miss for what was not, and misses a chunk cached in another form", async () => {
    const cache = await ChunkCache.open({ path: dir, maxBytes: 1 << 20, now });
    const a = chunk("a", 5000);
    const b = chunk("b", 7000);
    await put(cache, a);
    await put(cache, b);
    const both = await cache.read([a.want, b.want]);
    expect(both?.equals(Buffer.concat([a.bytes, b.bytes]))).toBe(true);
    expect(await cache.read([a.want, chunk("c", 10).want])).toBeUndefined();
    // The same id held compressed in another store is not these bytes.
    expect(await cache.read([{ ...a.want, flags: 1 }])).toBeUndefined();
    expect(cache.counts).toMatchObject({ hits: 2, bytesServed: 12000, bytesFilled: 12000 });
    expect(cache.counts.misses).toBeGreaterThan(0);
    expect(cache.totalBytes()).toBe(12000);
    await cache.close();
  });

  it("evicts the least recently used chunk first, a read counting as a use", async () => {
    const cache = await ChunkCache.open({ path: dir, maxBytes: 3000, now, touchEveryMs: 10 });
    const [a, b, c, d] = ["a", "b", "c", "d"].map((n) => chunk(n, 1000));
    for (const x of [a, b, c]) {
      clock += 10;
      await put(cache, x);
    }
    clock += 10;
    expect(await cache.read([a.want])).toBeDefined();
    await cache.flushTouches();
    clock += 10;
    await put(cache, d);
    expect(cache.holdsAll([a.want.id, c.want.id, d.want.id])).toBe(true);
    expect(cache.holdsAll([b.want.id])).toBe(false);
    expect(cache.counts.evictions).toBe(1);
    expect(await filesBytes()).toBe(3000);
    await cache.close();
  });

  it("never holds more than maxBytes, in the index or on disk, and skips a chunk larger than the bound", async () => {
    const max = 100_000;
    const cache = await ChunkCache.open({ path: dir, maxBytes: max, now });
    for (let i = 0; i < 60; i++) {
      clock++;
      await put(cache, chunk(`x${i}`, 1000 + ((i * 7919) % 9000)));
      expect(cache.totalBytes()).toBeLessThanOrEqual(max);
    }
    await put(cache, chunk("huge", max + 1));
    expect(cache.holdsAll([chunk("huge", 1).want.id])).toBe(false);
    expect(await filesBytes()).toBe(cache.totalBytes());
    expect(await readdir(join(dir, "tmp"))).toEqual([]);
    await cache.close();
  });

  it("stays within the bound while another process admits into the same directory at once", async () => {
    const max = 2_000_000;
    const cache = await ChunkCache.open({ path: dir, maxBytes: max });
    const child = spawn(process.execPath, [CHILD, dir, String(max), "child", "150", "40000"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const exited = new Promise<string>((resolve) => {
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
      });
      child.on("close", () => resolve(out));
    });
    for (let i = 0; i < 150; i++) {
      await put(cache, chunk(`parent-${i}`, 30000));
      expect(cache.totalBytes()).toBeLessThanOrEqual(max);
    }
    expect(await exited).toBe("done\n");
    expect(cache.totalBytes()).toBeLessThanOrEqual(max);
    expect(cache.totalBytes()).toBeGreaterThan(max - 40000);
    expect(await filesBytes()).toBe(cache.totalBytes());
    await cache.close();
  });

  it("keeps its chunks and its order of use across a reopen", async () => {
    const first = await ChunkCache.open({ path: dir, maxBytes: 2000, now });
    const a = chunk("a", 1000);
    const b = chunk("b", 1000);
    await put(first, a);
    clock += 10;
    await put(first, b);
    await first.close();
    const again = await ChunkCache.open({ path: dir, maxBytes: 2000, now });
    expect((await again.read([b.want]))?.equals(b.bytes)).toBe(true);
    clock += 10;
    await put(again, chunk("c", 1000));
    expect(again.holdsAll([a.want.id])).toBe(false);
    expect(again.holdsAll([b.want.id])).toBe(true);
    await again.close();
  });

  it("reads a chunk whose file another process removed as a miss, not an error, and clean drops its entry", async () => {
    const cache = await ChunkCache.open({ path: dir, maxBytes: 1 << 20, now });
    const a = chunk("a", 4000);
    await put(cache, a);
    await unlink(cache.files.pathOf(a.want.id.toString("hex")));
    expect(await cache.read([a.want])).toBeUndefined();
    expect(await cache.clean()).toEqual({ files: 0, entries: 1 });
    expect(cache.totalBytes()).toBe(0);
    await cache.close();
  });

  it("gives each queued name to one prefetching process at a time, oldest first, until its claim lapses", async () => {
    const one = await ChunkCache.open({ path: dir, maxBytes: 1 << 20, now });
    const two = await ChunkCache.open({ path: dir, maxBytes: 1 << 20, now });
    await one.objects.enqueue("img-b", 2);
    await two.objects.enqueue("img-a", 1);
    await one.objects.enqueue("img-a", 3); // already queued: keeps its place
    expect(two.objects.queued()).toEqual(["img-a", "img-b"]);
    expect(await one.objects.claimNext("one", 1000, 10)).toBe("img-a");
    expect(await two.objects.claimNext("two", 1000, 11)).toBe("img-b");
    expect(await two.objects.claimNext("two", 1000, 12)).toBeUndefined();
    expect(await two.objects.claimNext("two", 1000, 1011)).toBe("img-a");
    await two.objects.dequeue("img-a");
    expect(one.objects.queued()).toEqual(["img-b"]);
    await one.close();
    await two.close();
  });

  it("prunes down to a bound lowered since the chunks were admitted", async () => {
    const big = await ChunkCache.open({ path: dir, maxBytes: 10_000, now });
    for (let i = 0; i < 10; i++) {
      clock++;
      await put(big, chunk(`p${i}`, 1000));
    }
    await big.close();
    const small = await ChunkCache.open({ path: dir, maxBytes: 4000, now });
    expect(await small.prune()).toEqual({ count: 6, bytes: 6000 });
    expect(small.totalBytes()).toBe(4000);
    expect(small.holdsAll([chunk("p9", 1).want.id])).toBe(true);
    expect(await filesBytes()).toBe(4000);
    await small.close();
  });
});
