/**
 * Each chunk's fast checksum and the check every read makes: new chunks carry their checksum
 * in the index and in their pack entry; rebuild-index restores it from the packs; a read
 * checks what its store's readCheck says ("fast": the checksum, "full": the BLAKE3 id, "off");
 * a store written before checksums still reads, checked by BLAKE3, and is upgraded as it goes.
 */
import { open as fsOpen, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openCatalog } from "../../src/catalog/open.js";
import { Engine } from "../../src/engine/engine.js";
import { withLease } from "../../src/engine/lease.js";
import type { StoreFormat } from "../../src/engine/store-format.js";
import { CorruptDataError } from "../../src/errors.js";
import { chunkSum } from "../../src/hash/chunk-sum.js";
import { packName } from "../../src/store/names.js";
import type { ReadCheck } from "../../src/store/open-store.js";
import { decodeWholePack } from "../../src/store/pack-format.js";
import { chunksOf } from "../helpers/catalog.js";
import { prng } from "../helpers/data.js";
import { makeVersion1 } from "../helpers/pack-v1.js";
import { collect, pieces, tempStores } from "../helpers/store.js";

const MiB = 1024 * 1024;
const store = tempStores();

async function packFiles(objects: string): Promise<string[]> {
  const root = join(objects, "packs");
  const out: string[] = [];
  for (const sub of await readdir(root))
    for (const f of await readdir(join(root, sub))) out.push(join(root, sub, f));
  return out;
}

/** Flips one byte of a stored chunk, in its pack file; returns that chunk's id and record. */
async function corruptOneChunk(
  engine: Engine,
  objects: string,
  pick = (_: { rec: { sum?: bigint } }) => true,
) {
  const first = (await chunksOf(engine)).filter(pick)[0];
  const file = (await packFiles(objects)).find((f) => f.includes(first.rec.pack.toString("hex")));
  const fh = await fsOpen(file as string, "r+");
  const at = first.rec.offset + 100;
  const b = (await fh.read(Buffer.alloc(1), 0, 1, at)).buffer;
  await fh.write(Buffer.from([b[0] ^ 0xff]), 0, 1, at);
  await fh.close();
  return { ...first, file: file as string, at };
}

function withCheck(readCheck: ReadCheck) {
  return { stores: { local: { type: "filesystem" as const, readCheck } } };
}

describe("chunk checksums and read checks", () => {
  it("records each new chunk's checksum in the index and in its pack entry", async () => {
    const { engine, dir } = await store();
    const data = prng(41, 3 * MiB);
    await engine.ingest(pieces(data));
    const chunks = await chunksOf(engine);
    expect(chunks.length).toBeGreaterThan(10);
    const entries = new Map<string, bigint | undefined>();
    for (const f of await packFiles(join(dir, "objects"))) {
      for (const e of decodeWholePack(await readFile(f))) entries.set(e.id.toString("hex"), e.sum);
    }
    for (const { id, rec } of chunks) {
      expect(rec.sum).toBeTypeOf("bigint");
      expect(entries.get(id.toString("hex"))).toBe(rec.sum);
      const stored = (await engine
        .store()
        .backend.get(packName(rec.pack.toString("hex")), rec.offset, rec.length)) as Buffer;
      expect(chunkSum(stored)).toBe(rec.sum);
    }
  });

  it("rebuild-index restores every checksum from the packs", async () => {
    const { engine } = await store();
    await engine.ingest(pieces(prng(42, 2 * MiB)));
    const before = (await chunksOf(engine)).map((c) => [c.id.toString("hex"), c.rec.sum]);
    const { loseIndex } = await import("../helpers/catalog.js");
    await loseIndex(engine);
    await engine.rebuildIndex();
    const after = (await chunksOf(engine)).map((c) => [c.id.toString("hex"), c.rec.sum]);
    expect(after).toEqual(before);
  });

  it("fails a read of a chunk corrupted on disk under fast and full, and hands it out under off", async () => {
    for (const mode of ["fast", "full", "off"] as const) {
      const { engine, dir } = await store(withCheck(mode));
      const data = prng(43, 2 * MiB);
      const r = await engine.ingest(pieces(data));
      await corruptOneChunk(engine, join(dir, "objects"));
      if (mode === "off") {
        const got = await collect(engine.read(r.manifestId));
        expect(got.length).toBe(data.length);
        expect(got.equals(data)).toBe(false);
      } else {
        await expect(collect(engine.read(r.manifestId))).rejects.toBeInstanceOf(CorruptDataError);
      }
    }
  });

  it("full catches a chunk forged to match the checksum in its record; fast trusts the record", async () => {
    for (const mode of ["fast", "full"] as const) {
      const { engine, dir } = await store(withCheck(mode));
      const r = await engine.ingest(pieces(prng(44, 2 * MiB)));
      const bad = await corruptOneChunk(engine, join(dir, "objects"));
      // The forger also rewrites the record's checksum to match the bytes it planted.
      const pack = packName(bad.rec.pack.toString("hex"));
      const forged = chunkSum(await engine.store().backend.get(pack, bad.rec.offset, bad.rec.length));
      const moved = await withLease(engine.catalog, "test", 60_000, (lease) =>
        engine.catalog.transact((tx) =>
          tx.relocate("local", lease, [{ id: bad.id, from: bad.rec, to: { ...bad.rec, sum: forged } }]),
        ),
      );
      expect(moved).toEqual([true]);
      const read = collect(engine.read(r.manifestId));
      if (mode === "full") await expect(read).rejects.toBeInstanceOf(CorruptDataError);
      else expect((await read).length).toBe(2 * MiB);
    }
  });

  it("reads a store written before checksums by BLAKE3, and upgrades it as it is written to", async () => {
    const { engine, dir } = await store({
      stores: { local: { type: "filesystem" }, other: { type: "filesystem" } },
    });
    const objects = join(dir, "objects");
    const data = prng(45, 3 * MiB);
    const r = await engine.ingest(pieces(data));
    await makeVersion1(engine, objects);
    await engine.close();

    const again = await Engine.openDir(dir, {
      durable: false,
      packSize: MiB,
      stores: { local: { type: "filesystem" }, other: { type: "filesystem" } },
    });
    store.defer(() => again.close());
    // Old records have no sum: reads fall back to BLAKE3, and still catch corruption.
    expect((await chunksOf(again)).every((c) => c.rec.sum === undefined)).toBe(true);
    expect((await collect(again.read(r.manifestId))).equals(data)).toBe(true);
    // Reads leave the format record as it was: an older Tessera may still open the store.
    const packVersion = async () =>
      JSON.parse(await readFile(join(objects, "tessera-store.json"), "utf8")).packVersion;
    expect(await packVersion()).toBe(1);
    // A copy checks each chunk by BLAKE3 and writes it with its checksum.
    await again.copy(r.manifestId, "other");
    const copied = await chunksOf(again, "other");
    expect(copied.length).toBeGreaterThan(0);
    expect(copied.every((c) => c.rec.sum !== undefined)).toBe(true);
    // New data goes into version 2 packs beside the old ones, and the record says so first,
    // so that an older Tessera refuses the store rather than misread those packs.
    await again.ingest(pieces(prng(46, MiB)));
    expect(await packVersion()).toBe(2);
    expect((await again.catalog.getMeta<{ packVersion: number }>("format"))?.packVersion).toBe(2);
    expect((await chunksOf(again)).some((c) => c.rec.sum !== undefined)).toBe(true);
    // An old chunk (no sum) corrupted on disk is caught by its BLAKE3 id.
    await corruptOneChunk(again, objects, (c) => c.rec.sum === undefined);
    await expect(collect(again.read(r.manifestId))).rejects.toBeInstanceOf(CorruptDataError);
  });

  it("fsck finds a chunk record whose sum does not match its bytes, and repair mends it from another store", async () => {
    const { engine } = await store({
      stores: { local: { type: "filesystem" }, other: { type: "filesystem" } },
    });
    const r = await engine.ingest(pieces(prng(51, 2 * MiB)));
    await engine.copy(r.manifestId, "other"); // a good copy repair could take
    const [victim] = await chunksOf(engine);
    // The record's sum goes wrong (a flipped bit in the catalog, a damaged pack entry restored
    // by rebuild-index, ...): the bytes are fine, BLAKE3 matches.
    await withLease(engine.catalog, "test", 60_000, (lease) =>
      engine.catalog.transact((tx) =>
        tx.relocate("local", lease, [
          { id: victim.id, from: victim.rec, to: { ...victim.rec, sum: (victim.rec.sum as bigint) ^ 1n } },
        ]),
      ),
    );
    // Every "fast" read of local now fails (read order: local first).
    await expect(collect(engine.read(r.manifestId))).rejects.toThrow(/checksum/);
    const report = await engine.fsck({ store: "local", repair: true });
    expect(report.stores[0].badChunks).toBeGreaterThan(0);
    expect((await collect(engine.read(r.manifestId))).length).toBe(2 * MiB);
  });

  it("an open that fails leaves an older store's format records as they were", async () => {
    const { engine, dir } = await store({
      stores: { local: { type: "filesystem" }, other: { type: "filesystem" } },
    });
    await engine.ingest(pieces(prng(52, MiB)), { store: "other" });
    // As an older Tessera left it: pack version 1 in the catalog and on the backend.
    const file = join(dir, "objects", "tessera-store.json");
    const v1 = { ...JSON.parse(await readFile(file, "utf8")), packVersion: 1 };
    await writeFile(file, JSON.stringify(v1));
    await engine.catalog.transact((tx) => tx.setMeta("format", v1));
    await engine.close();
    // The new version, opened with a configuration that leaves out "other": refused.
    await expect(
      Engine.openDir(dir, { durable: false, stores: { local: { type: "filesystem" } } }),
    ).rejects.toThrow(/stores the configuration does not list/);
    const onBackend = JSON.parse(await readFile(file, "utf8")) as StoreFormat;
    const catalog = await openCatalog(join(dir, "catalog"));
    const inCatalog = await catalog.getMeta<StoreFormat>("format");
    await catalog.close();
    expect({ backend: onBackend.packVersion, catalog: inCatalog?.packVersion }).toEqual({
      backend: 1,
      catalog: 1,
    });
  });
});
