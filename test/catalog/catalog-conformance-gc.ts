/**
 * The catalog contract, part two (run by runCatalogConformance): the store index's side of the
 * GC rule — condemnation and revival, the trash, claimForDeletion — and relocation and packs.
 */
import { describe, expect, it } from "vitest";
import { ChunkVanishedError } from "../../src/errors.js";
import { manifestName } from "../../src/store/names.js";
import {
  type CatalogFactory,
  CHUNK_LEN,
  collect,
  freshCatalog,
  ingest,
  lookup,
  manifest,
  NO_WRITE,
  newChunk,
  newPack,
  packObject,
  packWrite,
  S1,
  S2,
  withLease,
} from "./catalog-fixtures.js";

const objectName = (id: Buffer) => manifestName(id.toString("hex"));

export function runCatalogGcConformance(name: string, make: CatalogFactory): void {
  describe(`catalog conformance: ${name}: condemnation and the trash`, () => {
    const catalog = freshCatalog(make);

    /** Ingests `ids` (one new pack) into S1, then releases them: indexed, at zero references. */
    async function unreferenced(ids: Buffer[]) {
      const cat = catalog();
      const m = manifest(ids);
      const w = packWrite(ids);
      await ingest(cat, S1, m, w);
      await cat.transact((tx) => tx.releaseObject(S1, m.id));
      return w;
    }

    it("condemn takes only indexed chunks without references out of lookup and scanChunks, counting them and their bytes", async () => {
      const cat = catalog();
      const [a, b] = [newChunk(), newChunk()];
      await unreferenced([a]);
      await ingest(cat, S1, manifest([b]));
      const r = await cat.transact((tx) => tx.condemn(S1, [a, b, newChunk()]));
      expect(r).toEqual({ condemned: 1, bytes: CHUNK_LEN });
      expect(await lookup(cat, S1, a)).toBeUndefined();
      expect((await lookup(cat, S1, b))?.refs).toBe(1);
      expect((await collect(cat.chunkIndex(S1).scanChunks())).map((e) => e.id.toString("hex"))).toEqual([
        b.toString("hex"),
      ]);
      expect(await cat.transact((tx) => tx.condemn(S1, [a]))).toEqual({ condemned: 0, bytes: 0 });
    });

    it("a commit referencing a condemned chunk revives it where it was with one reference, and takes its pack back out of the trash", async () => {
      const cat = catalog();
      const a = newChunk();
      const w = packWrite([a]);
      await ingest(cat, S1, manifest([a]), w);
      await cat.transact((tx) => tx.releaseObject(S1, manifest([a]).id));
      await cat.transact((tx) => tx.condemn(S1, [a]));
      const trashed = await cat.transact(async (tx) =>
        tx.trashPacks(S1, [{ name: packObject(w.pack), size: 4096 }], Date.now(), await tx.nextSeq()),
      );
      expect(trashed).toBe(1);
      expect(await cat.chunkIndex(S1).hasPack(w.pack)).toBe(false);
      expect(await cat.chunkIndex(S1).inTrash(packObject(w.pack))).toBe(true);

      const c = newChunk();
      const m2 = manifest([c, a]);
      await ingest(cat, S1, m2, packWrite([c]));
      expect(await lookup(cat, S1, a)).toEqual({ ...w.written.get(a.toString("hex")), refs: 1 });
      expect(await cat.chunkIndex(S1).inTrash(packObject(w.pack))).toBe(false);
      expect(await cat.chunkIndex(S1).hasPack(w.pack)).toBe(true);
      expect((await cat.getObject(m2.id))?.stores).toEqual({ [S1]: 1 });
    });

    it("trashPacks skips a pack a commit revived a chunk in after countedAt, and trashes a pack counted after", async () => {
      const cat = catalog();
      const a = newChunk();
      const w = await unreferenced([a]);
      await cat.transact((tx) => tx.condemn(S1, [a]));
      const countedAt = await cat.transact((tx) => tx.nextSeq());
      await ingest(cat, S1, manifest([a, a]), NO_WRITE);
      const pack = [{ name: packObject(w.pack), size: 4096 }];
      expect(await cat.transact((tx) => tx.trashPacks(S1, pack, Date.now(), countedAt))).toBe(0);
      expect(await cat.chunkIndex(S1).hasPack(w.pack)).toBe(true);
      expect(await cat.chunkIndex(S1).inTrash(pack[0]?.name as string)).toBe(false);

      const later = await cat.transact((tx) => tx.nextSeq());
      const at = Date.now();
      expect(await cat.transact((tx) => tx.trashPacks(S1, pack, at, later))).toBe(1);
      expect(await cat.chunkIndex(S1).hasPack(w.pack)).toBe(false);
      const trash = await collect(cat.chunkIndex(S1).scanTrash());
      expect(trash).toEqual([{ name: pack[0]?.name, entry: expect.objectContaining({ at, size: 4096 }) }]);
      expect(trash[0]?.entry.seq).toBeGreaterThan(later);
    });

    it("trashOrphans trashes only objects the catalog does not want in that store, stamped with a newer sequence number", async () => {
      const cat = catalog();
      const recorded = newPack();
      await cat.transact((tx) => tx.recordPacks(S1, [{ id: recorded, size: 1, chunks: 1 }]));
      const held = manifest([newChunk()]);
      await ingest(cat, S2, held);
      const before = await cat.transact((tx) => tx.nextSeq());
      const stray = packObject(newPack());
      const strayManifest = objectName(manifest([newChunk()]).id);
      const objects = [
        { name: packObject(recorded), size: 100 },
        { name: stray, size: 101 },
        { name: objectName(held.id), size: 102 },
        { name: strayManifest, size: 103 },
      ];
      const n = await cat.transact((tx) => tx.trashOrphans(S1, objects, Date.now()));
      // `held` is held in S2 only: in S1 it is an orphan.
      expect(n).toBe(3);
      const idx = cat.chunkIndex(S1);
      expect(await idx.inTrash(packObject(recorded))).toBe(false);
      expect(await idx.inTrash(stray)).toBe(true);
      expect(await idx.inTrash(strayManifest)).toBe(true);
      expect(await idx.inTrash(objectName(held.id))).toBe(true);
      expect(await cat.chunkIndex(S2).inTrash(objectName(held.id))).toBe(false);
      for (const { entry } of await collect(idx.scanTrash())) expect(entry.seq).toBeGreaterThan(before);

      const n2 = await cat.transact((tx) =>
        tx.trashOrphans(S2, [{ name: objectName(held.id), size: 1 }], Date.now()),
      );
      expect(n2).toBe(0);
      await cat.transact((tx) => tx.untrash(S1, stray));
      expect(await idx.inTrash(stray)).toBe(false);
    });

    it("claimForDeletion refuses while a lease that began before the trashing is alive, and hands over the entry once it ends", async () => {
      const cat = catalog();
      const stray = packObject(newPack());
      const old = await cat.beginLease("older write", 60_000);
      const at = Date.now();
      await cat.transact((tx) => tx.trashOrphans(S1, [{ name: stray, size: 77 }], at));
      const younger = await cat.beginLease("younger write", 60_000);
      expect(await cat.transact((tx) => tx.claimForDeletion(S1, stray, Date.now()))).toBeUndefined();
      expect(await cat.chunkIndex(S1).inTrash(stray)).toBe(true);

      await cat.endLease(old.id);
      const entry = await cat.transact((tx) => tx.claimForDeletion(S1, stray, Date.now()));
      expect(entry).toMatchObject({ at, size: 77 });
      expect(await cat.chunkIndex(S1).inTrash(stray)).toBe(false);
      expect(await cat.transact((tx) => tx.claimForDeletion(S1, stray, Date.now()))).toBeUndefined();
      await cat.endLease(younger.id);
    });

    it("contains answers lookup's question as booleans; wants names the packs recorded and the manifests held in that store", async () => {
      const cat = catalog();
      const [a, b] = [newChunk(), newChunk()];
      const m = manifest([a]);
      const w = packWrite([a]);
      await ingest(cat, S1, m, w);
      expect(await cat.chunkIndex(S1).contains([a, b])).toEqual([true, false]);
      expect(await cat.chunkIndex(S2).contains([a])).toEqual([false]);
      expect(await cat.chunkIndex(S1).wants(packObject(w.pack))).toBe(true);
      expect(await cat.chunkIndex(S1).wants(packObject(newPack()))).toBe(false);
      expect(await cat.chunkIndex(S1).wants(objectName(m.id))).toBe(true);
      expect(await cat.chunkIndex(S2).wants(objectName(m.id))).toBe(false);
      expect(await cat.chunkIndex(S1).wants("tessera-store.json")).toBe(true);
    });

    it("claimForDeletion with graceMs refuses an entry trashed less than that long ago, and hands it over after", async () => {
      const cat = catalog();
      const stray = packObject(newPack());
      const at = Date.now();
      await cat.transact((tx) => tx.trashOrphans(S1, [{ name: stray, size: 9 }], at));
      expect(
        await cat.transact((tx) => tx.claimForDeletion(S1, stray, at + 500, { graceMs: 1000 })),
      ).toBeUndefined();
      expect(await cat.chunkIndex(S1).inTrash(stray)).toBe(true);
      const entry = await cat.transact((tx) => tx.claimForDeletion(S1, stray, at + 1000, { graceMs: 1000 }));
      expect(entry).toMatchObject({ at, size: 9 });
    });

    it("claimForDeletion with ignoreLeases hands over the entry despite an older live lease", async () => {
      const cat = catalog();
      const stray = packObject(newPack());
      const old = await cat.beginLease("older write", 60_000);
      await cat.transact((tx) => tx.trashOrphans(S1, [{ name: stray, size: 5 }], Date.now()));
      const entry = await cat.transact((tx) =>
        tx.claimForDeletion(S1, stray, Date.now(), { ignoreLeases: true }),
      );
      expect(entry).toMatchObject({ size: 5 });
      expect(await cat.chunkIndex(S1).inTrash(stray)).toBe(false);
      expect((await cat.liveLeases()).map((l) => l.id)).toContain(old.id);
    });

    it("claimForDeletion refuses an object wanted again (its pack recorded, its manifest held) and takes it out of the trash", async () => {
      const cat = catalog();
      const w = await unreferenced([newChunk()]);
      const packObj = packObject(w.pack);
      const m = manifest([newChunk()]);
      await cat.transact(async (tx) => {
        await tx.trashPacks(S1, [{ name: packObj, size: 10 }], Date.now(), await tx.nextSeq());
        await tx.trashOrphans(S1, [{ name: objectName(m.id), size: 10 }], Date.now());
      });
      expect(await cat.chunkIndex(S1).inTrash(packObj)).toBe(true);
      expect(await cat.chunkIndex(S1).inTrash(objectName(m.id))).toBe(true);

      await cat.transact((tx) => tx.recordPacks(S1, w.packs));
      await ingest(cat, S1, m);
      for (const name of [packObj, objectName(m.id)]) {
        expect(await cat.transact((tx) => tx.claimForDeletion(S1, name, Date.now()))).toBeUndefined();
        expect(await cat.chunkIndex(S1).inTrash(name)).toBe(false);
      }
      expect(await cat.chunkIndex(S1).hasPack(w.pack)).toBe(true);
    });

    it("once a trashed pack is claimed, its condemned chunks are gone: a commit referencing one fails with ChunkVanishedError and changes nothing", async () => {
      const cat = catalog();
      const [a, b, d] = [newChunk(), newChunk(), newChunk()];
      const w = await unreferenced([a, b]);
      await unreferenced([d]);
      await cat.transact((tx) => tx.condemn(S1, [a, b, d]));
      await cat.transact(async (tx) =>
        tx.trashPacks(S1, [{ name: packObject(w.pack), size: 2048 }], Date.now(), await tx.nextSeq()),
      );
      const entry = await cat.transact((tx) => tx.claimForDeletion(S1, packObject(w.pack), Date.now()));
      expect(entry).toMatchObject({ size: 2048 });

      const c = newChunk();
      const m = manifest([c, a]);
      const wc = packWrite([c]);
      await expect(ingest(cat, S1, m, wc)).rejects.toBeInstanceOf(ChunkVanishedError);
      expect(await cat.getObject(m.id)).toBeUndefined();
      expect(await cat.chunkIndex(S1).lookup([a, c])).toEqual([undefined, undefined]);
      expect(await cat.chunkIndex(S1).hasPack(wc.pack)).toBe(false);
      expect(await cat.chunkIndex(S1).hasPack(w.pack)).toBe(false);

      // A chunk condemned in another pack, not claimed, still revives.
      await ingest(cat, S1, manifest([d]), NO_WRITE);
      expect((await lookup(cat, S1, d))?.refs).toBe(1);
    });
  });

  describe(`catalog conformance: ${name}: relocation and packs`, () => {
    const catalog = freshCatalog(make);

    it("relocate moves a chunk only while it is still at `from`, keeping its references, and answers per move", async () => {
      const cat = catalog();
      const [a, b] = [newChunk(), newChunk()];
      const m = manifest([a, b]);
      const w = packWrite(m.distinct);
      await ingest(cat, S1, m, w);
      await ingest(cat, S1, manifest([a]), packWrite([a]));
      const at = (id: Buffer) => w.written.get(id.toString("hex")) as { pack: Buffer; offset: number };
      const q = newPack();
      const to = { pack: q, offset: 4096, length: CHUNK_LEN, flags: 0 };
      const answers = await withLease(cat, (lease) =>
        cat.transact((tx) =>
          tx.relocate(S1, lease, [
            { id: a, from: { pack: at(a).pack, offset: at(a).offset }, to },
            { id: b, from: { pack: q, offset: 0 }, to: { ...to, offset: 0 } },
          ]),
        ),
      );
      expect(answers).toEqual([true, false]);
      expect(await lookup(cat, S1, a)).toEqual({ ...to, refs: 2 });
      expect(await lookup(cat, S1, b)).toEqual({ ...w.written.get(b.toString("hex")), refs: 1 });

      // A stale move (from its old place) is refused; a report-only move answers where it is.
      const again = await withLease(cat, (lease) =>
        cat.transact((tx) =>
          tx.relocate(S1, lease, [
            { id: a, from: { pack: at(a).pack, offset: at(a).offset }, to: { ...to, offset: 0 } },
            { id: a, from: { pack: q, offset: 4096 } },
            { id: b, from: { pack: q, offset: 4096 } },
          ]),
        ),
      );
      expect(again).toEqual([false, true, false]);
      expect(await lookup(cat, S1, a)).toEqual({ ...to, refs: 2 });
    });

    it("relocate without `from` indexes a chunk still absent, with the given refs, and refuses one indexed", async () => {
      const cat = catalog();
      const a = newChunk();
      await ingest(cat, S1, manifest([a]));
      const before = await lookup(cat, S1, a);
      const x = newChunk();
      const to = { pack: newPack(), offset: 0, length: CHUNK_LEN, flags: 0 };
      const answers = await withLease(cat, (lease) =>
        cat.transact((tx) =>
          tx.relocate(S1, lease, [
            { id: x, to, refs: 3 },
            { id: a, to, refs: 3 },
          ]),
        ),
      );
      expect(answers).toEqual([true, false]);
      expect(await lookup(cat, S1, x)).toEqual({ ...to, refs: 3 });
      expect(await lookup(cat, S1, a)).toEqual(before);
      expect(await lookup(cat, S2, x)).toBeUndefined();
    });

    it("recordPacks makes hasPack true in that store only and lists the pack with its size and chunk count", async () => {
      const cat = catalog();
      const p = newPack();
      expect(await cat.chunkIndex(S1).hasPack(p)).toBe(false);
      await cat.transact((tx) => tx.recordPacks(S1, [{ id: p, size: 12345, chunks: 7 }]));
      expect(await cat.chunkIndex(S1).hasPack(p)).toBe(true);
      expect(await cat.chunkIndex(S2).hasPack(p)).toBe(false);
      const packs = await collect(cat.chunkIndex(S1).scanPacks());
      expect(packs).toHaveLength(1);
      expect(packs[0]?.id.equals(p)).toBe(true);
      expect(packs[0]?.rec).toMatchObject({ size: 12345, chunks: 7 });
    });
  });
}
