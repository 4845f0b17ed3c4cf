/**
 * The node-local chunk cache on real files in a temporary directory: hits and misses, least
 * recently used eviction by slab, the bound held (also with a second process admitting at
 * once), the index kept across a reopen, bad or unchecked bytes never served, a slab vanished
 * under a reader read as a miss, and a cache of the earlier layout emptied.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readlinkSync } from "node:fs";
import { mkdir, mkdtemp, open, readdir, rm, stat, unlink, writeFile } from "node:fs/promises";
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
  return { want: { id, length: size }, bytes: randomBytes(size) };
}

async function put(cache: ChunkCache, c: { want: WantedChunk; bytes: Buffer }): Promise<void> {
  expect(cache.reserveFill(c.bytes.length)).toBe(true);
  await cache.fill([c.want], c.bytes, c.bytes.length);
}

async function filesBytes(): Promise<number> {
  let total = 0;
  for (const name of await readdir(join(dir, "slabs"))) total += (await stat(join(dir, "slabs", name))).size;
  return total;
}

describe("the chunk cache", () => {
  it("returns what was filled, counts a miss for what was not, and misses a chunk whose record sum is not its bytes", async () => {
    const cache = await ChunkCache.open({ path: dir, maxBytes: 1 << 20, now });
    const a = chunk("a", 5000);
    const b = chunk("b", 7000);
    await put(cache, a);
    await put(cache, b);
    const both = await cache.read([a.want, b.want]);
    expect(both?.equals(Buffer.concat([a.bytes, b.bytes]))).toBe(true);
    expect(await cache.read([a.want, chunk("c", 10).want])).toBeUndefined();
    // A record whose sum differs says these are not the chunk's bytes.
    expect(await cache.read([{ ...a.want, sum: 1n }])).toBeUndefined();
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
    // Space is freed a slab at a time: the total ends within a slab and a chunk of the bound.
    expect(cache.totalBytes()).toBeGreaterThan(max - cache.slabBytes - 40000);
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

  it("reads a chunk whose slab file vanished as a miss, forgets it so that it is admitted again, and clean frees the slab", async () => {
    const cache = await ChunkCache.open({ path: dir, maxBytes: 1 << 20, now });
    const a = chunk("a", 4000);
    await put(cache, a);
    await unlink(cache.files.pathOf(cache.index.get(a.want.id)?.s as number));
    expect(await cache.read([a.want])).toBeUndefined();
    expect(cache.holdsAll([a.want.id])).toBe(false);
    expect(await cache.clean()).toEqual({ files: 0, entries: 0 });
    expect(cache.totalBytes()).toBe(0);
    await put(cache, a);
    expect((await cache.read([a.want]))?.equals(a.bytes)).toBe(true);
    await cache.close();
  });

  it("lets go of a slab another process evicted, so that its space is freed", async () => {
    const one = await ChunkCache.open({ path: dir, maxBytes: 2000, slabBytes: 1000, now });
    const two = await ChunkCache.open({ path: dir, maxBytes: 2000, slabBytes: 1000, now });
    const a = chunk("a", 1000);
    await put(one, a);
    const path = one.files.pathOf(one.index.get(a.want.id)?.s as number);
    expect(await one.read([a.want])).toBeDefined(); // opens a read descriptor of the slab
    for (const n of ["b", "c"]) {
      clock += 10;
      await put(two, chunk(n, 1000));
    }
    expect(existsSync(path)).toBe(false);
    const held = () =>
      readdirSync("/proc/self/fd").some((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).startsWith(path);
        } catch {
          return false;
        }
      });
    expect(held()).toBe(true);
    await one.flushTouches();
    expect(held()).toBe(false);
    await one.close();
    await two.close();
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

  it("lays chunks admitted together side by side in one slab, and evicts a slab whole", async () => {
    const cache = await ChunkCache.open({ path: dir, maxBytes: 40_000, slabBytes: 20_000, now });
    const [a, b, c] = ["a", "b", "c"].map((n) => chunk(n, 6000));
    expect(cache.reserveFill(12000)).toBe(true);
    await cache.fill([a.want, b.want], Buffer.concat([a.bytes, b.bytes]), 12000);
    const ea = cache.index.get(a.want.id);
    const eb = cache.index.get(b.want.id);
    expect(eb?.s).toBe(ea?.s);
    expect(eb?.o).toBe((ea?.o as number) + 6000);
    clock += 10;
    await put(cache, c); // 18,000 bytes: still the first slab
    for (let i = 0; i < 4; i++) {
      clock += 10;
      await put(cache, chunk(`d${i}`, 9000));
    }
    // 54,000 bytes were admitted into three slabs; the first (a, b, c) went whole.
    expect(cache.holdsAll([a.want.id])).toBe(false);
    expect(cache.holdsAll([b.want.id])).toBe(false);
    expect(cache.holdsAll([c.want.id])).toBe(false);
    expect(cache.counts.evictions).toBe(3);
    expect(await filesBytes()).toBe(cache.totalBytes());
    await cache.close();
  });

  it("admits only bytes that match their record's sum, and unchecked bytes only with one", async () => {
    const { chunkSum } = await import("../../src/hash/chunk-sum.js");
    const cache = await ChunkCache.open({ path: dir, maxBytes: 1 << 20, now });
    const a = chunk("a", 3000);
    const b = chunk("b", 3000);
    const c = chunk("c", 3000);
    const wants = [{ ...a.want, sum: 7n }, b.want, { ...c.want, sum: chunkSum(c.bytes) }];
    expect(cache.reserveFill(9000)).toBe(true);
    await cache.fill(wants, Buffer.concat([a.bytes, b.bytes, c.bytes]), 9000, false);
    expect(cache.holdsAll([a.want.id])).toBe(false);
    expect(cache.holdsAll([b.want.id])).toBe(false);
    expect((await cache.read([c.want]))?.equals(c.bytes)).toBe(true);
    await cache.close();
  });

  it("drops a chunk whose cached bytes went bad and reads it as a miss", async () => {
    const cache = await ChunkCache.open({ path: dir, maxBytes: 1 << 20, now });
    const a = chunk("a", 4000);
    await put(cache, a);
    const e = cache.index.get(a.want.id);
    const fh = await open(cache.files.pathOf(e?.s as number), "r+");
    await fh.write(Buffer.from([1, 2, 3]), 0, 3, (e?.o as number) + 100);
    await fh.close();
    expect(await cache.read([a.want])).toBeUndefined();
    expect(cache.counts.dropped).toBe(1);
    expect(cache.holdsAll([a.want.id])).toBe(false);
    await cache.close();
  });

  it("empties a cache directory of the earlier layout (a file per chunk) when it opens it", async () => {
    const { open: openLmdb } = await import("lmdb");
    const old = openLmdb({ path: join(dir, "index"), maxDbs: 10 });
    const meta = old.openDB({ name: "meta", encoding: "msgpack" });
    const chunks = old.openDB({ name: "chunks", keyEncoding: "binary", encoding: "msgpack" });
    await meta.put("total", 5);
    await chunks.put(chunk("a", 1).want.id, { n: 5, f: 0, t: 1 });
    await old.close();
    await mkdir(join(dir, "chunks", "61", "00"), { recursive: true });
    await writeFile(join(dir, "chunks", "61", "00", "x"), "12345");
    const cache = await ChunkCache.open({ path: dir, maxBytes: 1 << 20, now });
    expect(cache.totalBytes()).toBe(0);
    expect(cache.holdsAll([chunk("a", 1).want.id])).toBe(false);
    expect(existsSync(join(dir, "chunks"))).toBe(false);
    await put(cache, chunk("b", 100));
    expect(cache.totalBytes()).toBe(100);
    await cache.close();
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
