/**
 * Scrub and repair: bit rot in a filesystem store's pack and a pack gone from an S3 store are
 * found chunk by chunk; a chunk another store holds intact is copied back in; an object whose
 * chunk no store can supply is marked damaged and refused with a clear error, never served
 * wrong; a chunk a manifest lists but the index lacks is found and restored with its refs.
 */
import { open, readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Engine } from "../../src/engine/engine.js";
import { DamagedDataError } from "../../src/errors.js";
import { packName } from "../../src/store/names.js";
import { chunkRecord, chunksOf, dropChunk, loseIndex, packsOf } from "../helpers/catalog.js";
import { prng } from "../helpers/data.js";
import { type S3rver, startS3rver } from "../helpers/s3.js";
import { collect, pieces, tempStores } from "../helpers/store.js";

const MiB = 1024 * 1024;
const store = tempStores();
let s3: S3rver;
beforeAll(async () => {
  s3 = await startS3rver();
});
afterAll(async () => {
  await s3.stop();
});

/** Flips one byte in the middle of the first pack file under `dir`. */
async function flipAByte(dir: string): Promise<void> {
  const packs = join(dir, "packs");
  const sub = (await readdir(packs))[0] as string;
  const file = join(packs, sub, (await readdir(join(packs, sub)))[0] as string);
  const fh = await open(file, "r+");
  const at = 100_000;
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, at);
  b[0] ^= 0x40;
  await fh.write(b, 0, 1, at);
  await fh.close();
}

function totals(r: Awaited<ReturnType<Engine["fsck"]>>, name: string) {
  return r.stores.find((s) => s.store === name);
}

describe("fsck", () => {
  it("finds nothing wrong in a sound store, having read every chunk", async () => {
    const { engine } = await store();
    const a = await engine.ingest(pieces(prng(1, 3 * MiB)));
    const r = await engine.fsck();
    expect(totals(r, "local")).toMatchObject({
      chunksChecked: a.newChunks,
      manifestsChecked: 1,
      badChunks: 0,
      missingChunks: 0,
      missingPacks: 0,
      damagedObjects: [],
    });
  });

  it("finds a flipped byte on disk, and repairs the chunk from another store that has it", async () => {
    const { engine, dir } = await store({
      stores: { local: { type: "filesystem" }, edge: { type: "filesystem" } },
    });
    const data = Buffer.from(prng(2, 3 * MiB));
    const a = await engine.ingest(pieces(data), { store: "local" });
    await engine.copy(a.manifestId, "edge");
    await flipAByte(join(dir, "objects"));
    const found = await engine.fsck({ store: "local" });
    expect(totals(found, "local")).toMatchObject({ badChunks: 1, repaired: 0 });
    const fixed = await engine.fsck({ store: "local", repair: true });
    expect(totals(fixed, "local")).toMatchObject({ badChunks: 1, repaired: 1, damagedObjects: [] });
    expect(totals(await engine.fsck(), "local")).toMatchObject({ badChunks: 0, missingChunks: 0 });
    // Served from local again (its copy mended), every byte right.
    await loseIndex(engine, "edge");
    expect((await collect(engine.read(a.manifestId))).equals(data)).toBe(true);
  });

  it("finds a pack gone from an S3 store; with no other copy the object is marked damaged and refused", async () => {
    const { engine } = await store({
      stores: { central: { type: "s3", ...s3.options, prefix: "fsck/" } },
    });
    const data = Buffer.from(prng(3, 3 * MiB));
    const a = await engine.ingest(pieces(data), { store: "central" });
    const [pack] = await packsOf(engine, "central");
    await engine.store("central").backend.delete(packName(pack?.id.toString("hex") as string));
    const r = await engine.fsck({ repair: true });
    const central = totals(r, "central");
    expect(central?.missingPacks).toBe(1);
    expect(central?.badChunks).toBeGreaterThan(0);
    expect(central?.damagedObjects).toEqual([a.manifestId]);
    await expect(collect(engine.read(a.manifestId))).rejects.toBeInstanceOf(DamagedDataError);
  });

  it("finds chunks deleted from an S3 store and repairs them from a filesystem store that has them", async () => {
    const { engine } = await store({
      stores: {
        central: { type: "s3", ...s3.options, prefix: "fsck-repair/" },
        local: { type: "filesystem" },
      },
    });
    const data = Buffer.from(prng(7, 3 * MiB));
    const a = await engine.ingest(pieces(data), { store: "central" });
    await engine.copy(a.manifestId, "local");
    const [pack] = await packsOf(engine, "central");
    await engine.store("central").backend.delete(packName(pack?.id.toString("hex") as string));
    const r = totals(await engine.fsck({ store: "central", repair: true }), "central");
    expect(r?.missingPacks).toBe(1);
    expect(r?.repaired).toBe(r?.badChunks);
    expect(r?.damagedObjects).toEqual([]);
    expect(totals(await engine.fsck({ store: "central" }), "central")).toMatchObject({
      badChunks: 0,
      missingPacks: 0,
    });
    // Served by central alone: local's copy out of the way.
    await loseIndex(engine, "local");
    expect((await collect(engine.read(a.manifestId))).equals(data)).toBe(true);
  });

  it("finds a chunk a manifest lists but the index lacks, and restores it with its references", async () => {
    const { engine } = await store({
      stores: { local: { type: "filesystem" }, edge: { type: "filesystem" } },
    });
    const data = Buffer.from(prng(4, 2 * MiB));
    const a = await engine.ingest(pieces(data), { store: "local" });
    const b = await engine.ingest(pieces(data.subarray(0, MiB)), { store: "local" });
    await engine.copy(a.manifestId, "edge");
    const [victim] = (await chunksOf(engine, "local")).filter(({ rec }) => rec.refs === 2);
    expect(victim).toBeDefined();
    await dropChunk(engine, victim?.id as Buffer, "local");
    const r = await engine.fsck({ store: "local", repair: true });
    expect(totals(r, "local")).toMatchObject({ missingChunks: 1, repaired: 1 });
    expect((await chunkRecord(engine, victim?.id as Buffer, "local"))?.refs).toBe(2);
    expect((await collect(engine.read(b.manifestId))).equals(data.subarray(0, MiB))).toBe(true);
  });

  it("paces its reads to a rate, and stops when told to", async () => {
    const { engine } = await store();
    await engine.ingest(pieces(prng(6, 3 * MiB)));
    const stop = new AbortController();
    // At 1 MB/s three megabytes take three seconds: stopped long before.
    const run = engine.fsck({ bytesPerSecond: 1_000_000, signal: stop.signal });
    setTimeout(() => stop.abort(new Error("shutting down")), 100);
    await expect(run).rejects.toThrow("shutting down");
    // Unpaced, the same check runs through.
    expect(totals(await engine.fsck(), "local")?.badChunks).toBe(0);
  });
});
