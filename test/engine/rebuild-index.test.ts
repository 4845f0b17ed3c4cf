import { rm } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { chunksOf, loseIndex } from "../helpers/catalog.js";
import { prng } from "../helpers/data.js";
import { collect, pieces, tempStores } from "../helpers/store.js";

const store = tempStores();

describe("rebuild-index", () => {
  it("rebuilds a deleted chunk index from the packs alone, with the same locations and refcounts", async () => {
    const s = await store();
    const { engine } = s;
    const a = await engine.ingest(pieces(prng(30, 5 * 1024 * 1024)));
    const b = await engine.ingest(
      pieces(Buffer.concat([prng(30, 2 * 1024 * 1024), prng(31, 3 * 1024 * 1024)])),
    );
    const before = await chunksOf(engine);
    await loseIndex(engine);
    await expect(collect(engine.read(a.manifestId))).rejects.toThrow(/missing from the index/);

    const result = await engine.rebuildIndex();
    expect(result.badPacks).toEqual([]);
    expect(result.manifests).toBe(2);
    const after = await chunksOf(engine);
    expect(after).toEqual(before);
    expect((await collect(engine.read(b.manifestId))).length).toBe(5 * 1024 * 1024);
  });

  it("restores manifests from the backend when the whole catalog is lost", async () => {
    const s = await store();
    const data = prng(32, 3 * 1024 * 1024);
    const r = await s.engine.ingest(pieces(data));
    await s.engine.close();
    await rm(join(s.dir, "catalog"), { recursive: true });
    const engine = await Engine.openDir(s.dir, { durable: false });
    store.defer(() => engine.close());
    const result = await engine.rebuildIndex();
    expect(result.manifestsRestored).toBe(1);
    expect(await engine.stat(r.manifestId)).toMatchObject({
      size: data.length,
      hashes: r.hashes,
      stores: { local: 1 },
    });
    expect((await collect(engine.read(r.manifestId))).equals(Buffer.from(data))).toBe(true);
  });

  it("carries a small upload's manifest in its pack (one write, not two), a chunkless one's on its own, and restores both", async () => {
    const s = await store();
    const backend = s.engine.store().backend;
    const puts: string[] = [];
    const realPut = backend.put.bind(backend);
    backend.put = (name, parts) => {
      puts.push(name.split("/")[0] as string);
      return realPut(name, parts);
    };
    const data = prng(33, 300 * 1024);
    const small = await s.engine.ingest(pieces(data));
    expect(puts).toEqual(["packs"]);
    // Nothing but zeros: no chunk to store, so no pack for the manifest to ride in.
    const zeros = await s.engine.ingest(pieces(new Uint8Array(2 * 1024 * 1024)));
    expect(puts).toEqual(["packs", "manifests"]);
    await s.engine.close();
    await rm(join(s.dir, "catalog"), { recursive: true });
    const engine = await Engine.openDir(s.dir, { durable: false });
    store.defer(() => engine.close());
    expect(await engine.rebuildIndex()).toMatchObject({
      manifestsRestored: 2,
      chunks: small.newChunks,
      badPacks: [],
    });
    expect((await collect(engine.read(small.manifestId))).equals(Buffer.from(data))).toBe(true);
    expect((await collect(engine.read(zeros.manifestId))).length).toBe(2 * 1024 * 1024);
    // The manifest entry is no chunk: the index holds exactly the chunks.
    expect((await chunksOf(engine)).length).toBe(small.newChunks);
  });
});
