/**
 * Several stores in one engine: each keeps its own chunks, ingests go where they are told,
 * copies move only what the target lacks, reads follow the read order, holders are counted per
 * store, and a catalog of the one-store layout is taken over in place.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open as openLmdb } from "lmdb";
import { afterEach, describe, expect, it } from "vitest";
import { Engine, type StoreSetup } from "../../src/engine/engine.js";
import { CorruptDataError, UnknownStoreError } from "../../src/errors.js";
import { CountingBackend } from "../../src/store/counting-backend.js";
import { FsBackend } from "../../src/store/fs-backend.js";
import { CHUNK_FLAG_ZSTD } from "../../src/store/pack-format.js";
import { chunksOf, loseIndex, packsOf } from "../helpers/catalog.js";
import { prng, textLike } from "../helpers/data.js";
import { collect, pieces } from "../helpers/store.js";

const MiB = 1024 * 1024;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

interface Opened {
  engine: Engine;
  dir: string;
  counts: Record<string, CountingBackend>;
}

/** An engine over filesystem stores `names` in a temp dir, each behind a request counter. */
async function twoStores(
  options: {
    names?: string[];
    compression?: Record<string, "zstd" | "none">;
    readOrder?: string[];
    dir?: string;
  } = {},
): Promise<Opened> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "tessera-stores-")));
  const counts: Record<string, CountingBackend> = {};
  const setups: Record<string, StoreSetup> = {};
  for (const name of options.names ?? ["local", "edge"]) {
    counts[name] = new CountingBackend(new FsBackend(join(dir, name), { durable: false }));
    setups[name] = {
      backend: counts[name],
      packSize: MiB,
      compression: options.compression?.[name] ?? "none",
    };
  }
  const engine = await Engine.open(join(dir, "catalog"), setups, { readOrder: options.readOrder });
  cleanups.push(async () => {
    await engine.close().catch(() => {});
    if (!options.dir) await rm(dir, { recursive: true, force: true });
  });
  return { engine, dir, counts };
}

async function chunkCount(engine: Engine, store: string): Promise<number> {
  return (await chunksOf(engine, store)).length;
}

/** A "base image" and a "derived" one: the base with 3 stretches of 64 KiB rewritten. */
function baseAndDerived(): { base: Buffer; derived: Buffer; differing: number } {
  const base = Buffer.from(prng(1, 12 * MiB));
  const derived = Buffer.from(base);
  for (const at of [MiB, 5 * MiB, 9 * MiB]) derived.set(prng(at, 64 * 1024), at);
  return { base, derived, differing: 3 * 64 * 1024 };
}

describe("several stores", () => {
  it("writes an ingest's chunks only to the store it names, and counts its holder there", async () => {
    const { engine, counts } = await twoStores();
    const data = prng(2, 3 * MiB);
    const localPuts = counts.local?.counts.puts; // the store's format record, at open
    const r = await engine.ingest(pieces(data), { store: "edge" });
    expect(await chunkCount(engine, "edge")).toBe(r.newChunks);
    expect(await chunkCount(engine, "local")).toBe(0);
    expect(counts.local?.counts.puts).toBe(localPuts);
    expect((await engine.stat(r.manifestId)).stores).toEqual({ edge: 1 });
    expect((await collect(engine.read(r.manifestId))).equals(data)).toBe(true);
    await expect(engine.ingest(pieces(data), { store: "nowhere" })).rejects.toBeInstanceOf(UnknownStoreError);
  });

  it("stores the same content once per store, not once overall", async () => {
    const { engine } = await twoStores();
    const data = prng(3, 2 * MiB);
    const a = await engine.ingest(pieces(data), { store: "local" });
    const b = await engine.ingest(pieces(data), { store: "edge" });
    expect(b.manifestId).toBe(a.manifestId);
    expect(b.newChunks).toBe(a.newChunks);
    expect(b.createdObject).toBe(false);
    expect((await engine.stat(a.manifestId)).stores).toEqual({ local: 1, edge: 1 });
  });

  it("copies a derived image to a store holding its base by moving about the bytes that differ", async () => {
    const { engine, counts } = await twoStores();
    const { base, derived, differing } = baseAndDerived();
    await engine.ingest(pieces(base), { store: "local" });
    await engine.ingest(pieces(base), { store: "edge" });
    const d = await engine.ingest(pieces(derived), { store: "local" });
    const readBefore = counts.local?.counts.bytesGot ?? 0;
    const putBefore = counts.edge?.counts.bytesPut ?? 0;
    const c = await engine.copy(d.manifestId, "edge");
    // Each rewritten stretch changes the chunk it falls in and perhaps a neighbour (~64 KiB each).
    expect(c.bytesMoved).toBeGreaterThanOrEqual(differing);
    expect(c.bytesMoved).toBeLessThan(8 * differing);
    expect((counts.local?.counts.bytesGot ?? 0) - readBefore).toBe(c.bytesMoved);
    expect((counts.edge?.counts.bytesPut ?? 0) - putBefore).toBeLessThan(c.bytesMoved + 64 * 1024);
    expect((await engine.stat(d.manifestId)).stores).toEqual({ local: 1, edge: 1 });
  });

  it("serves an object from the store first in the read order that holds each chunk", async () => {
    const first = await twoStores({ readOrder: ["edge", "local"] });
    const data = prng(4, 4 * MiB);
    const r = await first.engine.ingest(pieces(data), { store: "local" });
    await first.engine.copy(r.manifestId, "edge");
    const gotLocal = first.counts.local?.counts.gets ?? 0;
    expect((await collect(first.engine.read(r.manifestId))).equals(data)).toBe(true);
    expect(first.counts.local?.counts.gets).toBe(gotLocal);
    expect(first.counts.edge?.counts.gets).toBeGreaterThan(0);
    // In the other order, the same object comes from local.
    await first.engine.close();
    const second = await twoStores({ dir: first.dir, readOrder: ["local", "edge"] });
    const gotEdge = second.counts.edge?.counts.gets; // the store's format record, at open
    expect((await collect(second.engine.read(r.manifestId))).equals(data)).toBe(true);
    expect(second.counts.edge?.counts.gets).toBe(gotEdge);
    expect(second.counts.local?.counts.gets).toBeGreaterThan(0);
  });

  it("reads a copied object from the target alone once the source has lost it", async () => {
    const { engine, dir } = await twoStores();
    const data = Buffer.concat([prng(5, 3 * MiB), Buffer.alloc(MiB), prng(6, MiB)]);
    const r = await engine.ingest(pieces(data), { store: "local" });
    await engine.copy(r.manifestId, "edge");
    await engine.release(r.manifestId, "local");
    await engine.close();
    await rm(join(dir, "local"), { recursive: true, force: true });
    const again = await twoStores({ dir, readOrder: ["local", "edge"] });
    expect(await chunkCount(again.engine, "edge")).toBeGreaterThan(0);
    // local's index still lists the (now unreferenced) chunks; the test for "edge alone" is
    // that with local's chunks dropped from its index the edge store serves every byte.
    await loseIndex(again.engine, "local");
    expect((await collect(again.engine.read(r.manifestId))).equals(data)).toBe(true);
    expect((await again.engine.stat(r.manifestId)).stores).toEqual({ edge: 1 });
  });

  it("moves compressed frames as they are and compresses raw ones for a store that compresses", async () => {
    const { engine, counts } = await twoStores({ compression: { local: "none", edge: "zstd" } });
    const data = textLike(7, 4 * MiB);
    const r = await engine.ingest(pieces(data), { store: "local" });
    const c = await engine.copy(r.manifestId, "edge");
    const zstdIn = async (store: string) =>
      (await chunksOf(engine, store)).filter(({ rec }) => rec.flags & CHUNK_FLAG_ZSTD).length;
    expect(await zstdIn("local")).toBe(0);
    expect(await zstdIn("edge")).toBe(c.chunksCopied);
    expect(counts.edge?.counts.bytesPut).toBeLessThan(c.bytesMoved / 2);
    // And back: edge's frames come back to local as they are, though local does not compress.
    await engine.release(r.manifestId, "local");
    await loseIndex(engine, "local");
    const back = await engine.copy(r.manifestId, "local");
    expect(back.bytesMoved).toBeLessThan(data.length / 2);
    expect(await zstdIn("local")).toBe(back.chunksCopied);
    await engine.release(r.manifestId, "edge");
    await loseIndex(engine, "edge");
    expect((await collect(engine.read(r.manifestId))).equals(data)).toBe(true);
  });

  it("refuses to copy a chunk that does not match its id, and the target's index stays as it was", async () => {
    const { engine } = await twoStores();
    const r = await engine.ingest(pieces(prng(8, 2 * MiB)), { store: "local" });
    const backend = engine.store("local").backend;
    const realGet = backend.get.bind(backend);
    backend.get = async (name, offset, length, into) => {
      const b = await realGet(name, offset, length, into);
      if (name.startsWith("packs/")) b[b.length >> 1] ^= 1;
      return b;
    };
    await expect(engine.copy(r.manifestId, "edge")).rejects.toBeInstanceOf(CorruptDataError);
    expect(await chunkCount(engine, "edge")).toBe(0);
    expect((await engine.stat(r.manifestId)).stores).toEqual({ local: 1 });
  });

  it("commits nothing when the target fails mid-copy, and copies cleanly after", async () => {
    const { engine } = await twoStores();
    const data = prng(9, 4 * MiB);
    const r = await engine.ingest(pieces(data), { store: "local" });
    const backend = engine.store("edge").backend;
    const realPut = backend.put.bind(backend);
    let puts = 0;
    backend.put = async (name, parts) => {
      if (name.startsWith("packs/") && ++puts === 2) throw new Error("bucket full");
      return realPut(name, parts);
    };
    await expect(engine.copy(r.manifestId, "edge")).rejects.toThrow("bucket full");
    expect(await chunkCount(engine, "edge")).toBe(0);
    expect((await engine.stat(r.manifestId)).stores).toEqual({ local: 1 });
    backend.put = realPut;
    const c = await engine.copy(r.manifestId, "edge");
    expect(await chunkCount(engine, "edge")).toBe(c.chunksCopied);
  });

  it("drops a store's chunk references with its last holder there, and the object with its last holder anywhere", async () => {
    const { engine } = await twoStores();
    const r = await engine.ingest(pieces(prng(10, 2 * MiB)), { store: "local" });
    await engine.copy(r.manifestId, "edge");
    await engine.copy(r.manifestId, "edge");
    const refs = async (store: string) => (await chunksOf(engine, store)).map(({ rec }) => rec.refs);
    expect((await engine.stat(r.manifestId)).stores).toEqual({ local: 1, edge: 2 });
    await engine.release(r.manifestId, "edge");
    expect((await refs("edge")).every((n) => n === 1)).toBe(true);
    await engine.release(r.manifestId, "edge");
    expect((await refs("edge")).every((n) => n === 0)).toBe(true);
    expect((await refs("local")).every((n) => n === 1)).toBe(true);
    expect(await engine.release(r.manifestId, "local")).toEqual({ removed: true });
    await expect(engine.stat(r.manifestId)).rejects.toThrow();
  });

  it("rebuilds one store's index from its own packs and manifests, leaving the other's alone", async () => {
    const { engine } = await twoStores();
    const a = await engine.ingest(pieces(prng(11, 2 * MiB)), { store: "local" });
    const b = await engine.ingest(pieces(prng(12, 2 * MiB)), { store: "edge" });
    const before = await chunksOf(engine, "edge");
    await loseIndex(engine, "edge");
    const localBefore = await chunkCount(engine, "local");
    const result = await engine.rebuildIndex("edge");
    expect(result.manifests).toBe(1);
    expect(await chunksOf(engine, "edge")).toEqual(before);
    expect(await chunkCount(engine, "local")).toBe(localBefore);
    expect((await collect(engine.read(b.manifestId))).length).toBe(2 * MiB);
    expect((await collect(engine.read(a.manifestId))).length).toBe(2 * MiB);
  });
});

describe("a wholly lost catalog of several stores", () => {
  it("is rebuilt store by store with a holder in every store that carries the object, and a removed copy is not revived", async () => {
    const { engine, dir } = await twoStores();
    const both = await engine.ingest(pieces(prng(15, 2 * MiB)), { store: "local" });
    await engine.copy(both.manifestId, "edge");
    const localOnly = await engine.ingest(pieces(prng(16, MiB)), { store: "local" });
    await engine.close();
    await rm(join(dir, "catalog"), { recursive: true });
    const again = await twoStores({ dir });
    expect((await again.engine.rebuildIndex("local")).manifestsRestored).toBe(2);
    expect((await again.engine.rebuildIndex("edge")).manifestsRestored).toBe(0);
    expect((await again.engine.stat(both.manifestId)).stores).toEqual({ local: 1, edge: 1 });
    expect((await again.engine.stat(localOnly.manifestId)).stores).toEqual({ local: 1 });
    const edgeRefs = (await chunksOf(again.engine, "edge")).map(({ rec }) => rec.refs);
    expect(edgeRefs.length).toBeGreaterThan(0);
    expect(edgeRefs.every((n) => n === 1)).toBe(true);
    // A copy removed in normal operation leaves its manifest behind until collection; a
    // rebuild of that store's index does not give it a holder back.
    await again.engine.release(both.manifestId, "edge");
    await loseIndex(again.engine, "edge");
    const rebuiltAgain = await again.engine.rebuildIndex("edge");
    expect(rebuiltAgain.manifests).toBe(0);
    expect((await again.engine.stat(both.manifestId)).stores).toEqual({ local: 1 });
  });
});

describe("a catalog of the one-store layout", () => {
  it("becomes the default store's on first open: chunks, packs, holders and image stores", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tessera-layout-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    // Write a store with today's code, then turn its catalog into the old layout by hand.
    const data = prng(13, 3 * MiB);
    let id: string;
    {
      const e = await Engine.openDir(dir, { durable: false, packSize: MiB });
      id = (await e.ingest(pieces(data))).manifestId;
      await e.close();
    }
    const root = openLmdb({ path: join(dir, "catalog"), maxDbs: 256 });
    const bin = { keyEncoding: "binary", encoding: "binary" } as const;
    const jsonDb = { keyEncoding: "binary", encoding: "json" } as const;
    const oldChunks = root.openDB<Buffer, Buffer>({ name: "chunks", ...bin });
    const oldPacks = root.openDB({ name: "packs", ...jsonDb });
    const newChunks = root.openDB<Buffer, Buffer>({ name: "chunks@local", ...bin });
    const newPacks = root.openDB({ name: "packs@local", ...jsonDb });
    const objects = root.openDB<Record<string, unknown>, Buffer>({ name: "objects", ...jsonDb });
    const images = root.openDB<Record<string, unknown>, string>({ name: "images", encoding: "msgpack" });
    const meta = root.openDB({ name: "meta", encoding: "json" });
    await root.transaction(() => {
      for (const { key, value } of [...newChunks.getRange()]) oldChunks.putSync(key, value);
      for (const { key, value } of [...newPacks.getRange()]) oldPacks.putSync(key, value);
      newChunks.clearSync();
      newPacks.clearSync();
      for (const { key, value } of [...objects.getRange()]) {
        const { stores: _, ...rest } = value;
        objects.putSync(key, { ...rest, refs: 2 });
      }
      images.putSync("img-1", { id: "img-1", object: id });
      meta.removeSync("layout");
    });
    await root.close();

    const e = await Engine.openDir(dir, { durable: false, packSize: MiB });
    try {
      expect((await collect(e.read(id))).equals(data)).toBe(true);
      expect((await e.stat(id)).stores).toEqual({ local: 2 });
      expect((await e.catalog.records.getImage("img-1"))?.stores).toEqual(["local"]);
      expect((await packsOf(e, "local")).length).toBeGreaterThan(0);
    } finally {
      await e.close();
    }
  });
});

describe("a store the configuration no longer lists", () => {
  it("is refused at open while it holds objects, naming it, and accepted once it holds none", async () => {
    const { engine, dir } = await twoStores();
    const r = await engine.ingest(pieces(prng(14, MiB)), { store: "edge" });
    await engine.close();
    const open = () =>
      Engine.openDir(dir, {
        durable: false,
        packSize: MiB,
        stores: { local: { type: "filesystem", path: join(dir, "local") } },
      });
    await expect(open()).rejects.toThrow(/"edge" \(1 objects\)/);
    const again = await twoStores({ dir });
    await again.engine.copy(r.manifestId, "local");
    await again.engine.release(r.manifestId, "edge");
    await again.engine.close();
    const without = await open();
    expect((await without.stat(r.manifestId)).stores).toEqual({ local: 1 });
    await without.close();
  });
});
