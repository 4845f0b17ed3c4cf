import { open as fsOpen, readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { CorruptDataError, StoreFormatError } from "../../src/errors.js";
import { chunksOf, packsOf } from "../helpers/catalog.js";
import { prng } from "../helpers/data.js";
import { collect, pieces, tempStores } from "../helpers/store.js";

const store = tempStores();

/** Every chunk, pack, manifest and object the catalog has, to compare whole states. */
async function snapshot(engine: Engine): Promise<string> {
  const objects: unknown[] = [];
  for await (const { id, obj } of engine.catalog.scanObjects()) {
    objects.push([id.toString("hex"), obj, (await engine.catalog.getManifest(id))?.toString("hex")]);
  }
  const state = [await chunksOf(engine), await packsOf(engine), objects];
  return JSON.stringify(state, (_, v) => (typeof v === "bigint" ? v.toString(16) : v));
}

async function* failingAfter(data: Uint8Array, failAt: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += 100_000) {
    if (at + 100_000 > failAt) {
      yield data.subarray(at, failAt);
      throw new Error("client went away");
    }
    yield data.subarray(at, at + 100_000);
  }
}

describe("failures", () => {
  it("leaves the catalog unchanged when an ingest is aborted at random points", async () => {
    const { engine } = await store();
    const base = prng(20, 3 * 1024 * 1024);
    await engine.ingest(pieces(base));
    const before = await snapshot(engine);
    const data = Buffer.concat([base, prng(21, 5 * 1024 * 1024)]);
    const rand = prng(22, 64);
    for (let k = 0; k < 8; k++) {
      const failAt = new DataView(rand.buffer).getUint32(k * 4, true) % data.length;
      await expect(engine.ingest(failingAfter(data, failAt))).rejects.toThrow("client went away");
      expect(await snapshot(engine)).toBe(before);
    }
    // the store still works, and the aborted ingests' chunks do not count as stored
    const r = await engine.ingest(pieces(data));
    const control = await store();
    await control.engine.ingest(pieces(base));
    expect(r.bytesStored).toBe((await control.engine.ingest(pieces(data))).bytesStored);
    expect((await collect(engine.read(r.manifestId))).equals(data)).toBe(true);
  });

  it("detects a chunk corrupted on disk when reading it", async () => {
    const { engine, dir } = await store();
    const r = await engine.ingest(pieces(prng(23, 2 * 1024 * 1024)));
    const packDir = join(dir, "objects", "packs");
    const sub = (await readdir(packDir))[0];
    const file = join(packDir, sub, (await readdir(join(packDir, sub)))[0]);
    const fh = await fsOpen(file, "r+");
    await fh.write(Buffer.from([0xff ^ (await fh.read(Buffer.alloc(1), 0, 1, 5000)).buffer[0]]), 0, 1, 5000);
    await fh.close();
    await expect(collect(engine.read(r.manifestId))).rejects.toBeInstanceOf(CorruptDataError);
  });

  it("refuses to open a store with other chunker parameters than it was created with", async () => {
    const { engine, dir } = await store();
    await engine.close();
    await expect(
      Engine.openDir(dir, { chunker: { min: 4096, avg: 16384, max: 65536 } }),
    ).rejects.toBeInstanceOf(StoreFormatError);
    const again = await Engine.openDir(dir, {});
    expect(again.chunkerParams).toEqual({ min: 16384, avg: 65536, max: 262144 });
    await again.close();
  });

  it("keeps a store's non-default parameters when reopened without any", async () => {
    const s = await store({ chunker: { min: 4096, avg: 16384, max: 65536 } });
    await s.engine.close();
    const again = await Engine.openDir(s.dir, {});
    expect(again.chunkerParams.avg).toBe(16384);
    await again.close();
  });
});

describe("backend failures", () => {
  it("commits nothing when the backend fails a pack write mid-ingest, and works again after", async () => {
    const { engine } = await store();
    const before = await snapshot(engine);
    const backend = engine.store().backend;
    const realPut = backend.put.bind(backend);
    let puts = 0;
    backend.put = async (name, parts) => {
      if (name.startsWith("packs/") && ++puts === 2) throw new Error("disk full");
      return realPut(name, parts);
    };
    await expect(engine.ingest(pieces(prng(40, 4 * 1024 * 1024)))).rejects.toThrow("disk full");
    expect(await snapshot(engine)).toBe(before);
    backend.put = realPut;
    const r = await engine.ingest(pieces(prng(40, 4 * 1024 * 1024)));
    expect((await collect(engine.read(r.manifestId))).length).toBe(4 * 1024 * 1024);
  });
});
