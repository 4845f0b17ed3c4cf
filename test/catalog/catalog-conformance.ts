/**
 * The contract every Catalog implementation must meet (src/catalog/catalog.ts, its comments).
 * Each implementation's test file calls runCatalogConformance with a factory for a fresh,
 * empty catalog and its cleanup. This part: units of work (visibility, rollback), objects and
 * reference counts, copies; the other parts run from here too: catalog-conformance-gc.ts
 * (condemnation, trash, relocation), -leases.ts (leases, sequence numbers), -records.ts
 * (image records, concurrent units of work), -metadefs.ts and -restore.ts (what rebuild-index
 * asks once it has restored image records). Only the catalog's interfaces are used.
 */
import { describe, expect, it } from "vitest";
import { ChunkVanishedError } from "../../src/errors.js";
import { runCatalogGcConformance } from "./catalog-conformance-gc.js";
import { runCatalogLeaseConformance } from "./catalog-conformance-leases.js";
import { runCatalogMetadefsConformance } from "./catalog-conformance-metadefs.js";
import { runCatalogRecordsConformance } from "./catalog-conformance-records.js";
import { runCatalogRestoreConformance } from "./catalog-conformance-restore.js";
import {
  type CatalogFactory,
  CHUNK_LEN,
  collect,
  freshCatalog,
  image,
  ingest,
  ingestCommit,
  lookup,
  manifest,
  member,
  newChunk,
  newPack,
  packWrite,
  S1,
  S2,
  storeWrite,
  task,
  withLease,
} from "./catalog-fixtures.js";

export function runCatalogConformance(name: string, make: CatalogFactory): void {
  describe(`catalog conformance: ${name}: units of work`, () => {
    const catalog = freshCatalog(make);

    it("a unit of work's writes are seen by no outside read before its function returns, and all together after it resolves", async () => {
      const cat = catalog();
      const [a, b] = [newChunk(), newChunk()];
      const m = manifest([a, b]);
      const img = image("img-visible");
      const w = packWrite(m.distinct);
      const lease = await cat.beginLease("visibility", 60_000);
      let returned = false;
      let resolved = false;
      const early: string[] = [];
      const torn: string[] = [];
      const poll = async () => {
        do {
          // Read in order: once a read sees the commit, every later read must see all of it.
          const seen = {
            image: (await cat.records.getImage(img.id)) !== undefined,
            object: (await cat.getObject(m.id)) !== undefined,
            chunk: (await lookup(cat, S1, b)) !== undefined,
            meta: (await cat.getMeta("visible")) !== undefined,
          };
          if (!returned && Object.values(seen).some(Boolean)) early.push(JSON.stringify(seen));
          if (seen.image && !Object.values(seen).every(Boolean)) torn.push(JSON.stringify(seen));
          await new Promise((r) => setImmediate(r));
        } while (!resolved);
      };
      const unit = cat
        .transact(async (tx) => {
          await tx.putImage(img);
          await tx.commitIngest(S1, ingestCommit(m, lease.id, w));
          await tx.setMeta("visible", true);
          for (let i = 0; i < 5; i++) await tx.getMeta("visible");
          returned = true;
          return "done";
        })
        .finally(() => {
          resolved = true;
        });
      const pollers = [poll(), poll(), poll()];
      expect(await unit).toBe("done");
      await Promise.all(pollers);
      expect(early).toEqual([]);
      expect(torn).toEqual([]);
      expect(await cat.records.getImage(img.id)).toEqual(img);
      expect((await cat.getObject(m.id))?.stores).toEqual({ [S1]: 1 });
      expect((await cat.getManifest(m.id))?.equals(m.bytes)).toBe(true);
      expect((await cat.chunkIndex(S1).lookup([a, b])).map((r) => r?.refs)).toEqual([1, 1]);
      expect(await cat.getMeta("visible")).toBe(true);
    });

    it("a unit of work reads its own writes before it commits", async () => {
      const cat = catalog();
      const m = manifest([newChunk()]);
      await withLease(cat, (lease) =>
        cat.transact(async (tx) => {
          await tx.putImage(image("img-own"));
          await tx.setMeta("k", { v: 1 });
          await tx.commitIngest(S1, ingestCommit(m, lease, packWrite(m.distinct)));
          expect((await tx.getImage("img-own"))?.id).toBe("img-own");
          expect(await tx.getMeta("k")).toEqual({ v: 1 });
          expect((await tx.getObject(m.id))?.stores).toEqual({ [S1]: 1 });
          expect((await tx.getManifest(m.id))?.equals(m.bytes)).toBe(true);
        }),
      );
    });

    it("a unit of work that throws rejects with its error and leaves records, objects, references, packs, meta and usage as they were", async () => {
      const cat = catalog();
      const a = newChunk();
      const m0 = manifest([a]);
      await ingest(cat, S1, m0);
      const old = image("img-old", { owner: "alpha", size: 10 });
      await cat.transact((tx) => tx.putImage(old));
      const usageBefore = await cat.records.ownerUsage("alpha");
      const holdingsBefore = await cat.holdingsByStore();
      const b = newChunk();
      const m1 = manifest([a, b]);
      const w = packWrite([b]);
      const extra = newPack();
      const boom = new Error("boom");
      const lease = await cat.beginLease("rollback", 60_000);
      await expect(
        cat.transact(async (tx) => {
          await tx.commitIngest(S1, ingestCommit(m1, lease.id, w));
          await tx.commitCopy(S2, m0.id, storeWrite(lease.id, packWrite([a])));
          await tx.putImage(image("img-new", { owner: "alpha", size: 500, status: "saving" }));
          await tx.putImage({ ...old, size: 999, owner: "beta" }, old);
          await tx.putMember(member("img-old", "proj-1"));
          await tx.putTask(task("task-1", "img-old", "2024-03-01T00:00:00.000Z"));
          await tx.setMeta("rolled", 1);
          await tx.recordPacks(S1, [{ id: extra, size: 10, chunks: 1 }]);
          await tx.releaseObject(S1, m0.id);
          throw boom;
        }),
      ).rejects.toBe(boom);
      expect(await cat.getObject(m1.id)).toBeUndefined();
      expect(await cat.getManifest(m1.id)).toBeUndefined();
      expect((await cat.getObject(m0.id))?.stores).toEqual({ [S1]: 1 });
      expect(await cat.chunkIndex(S1).lookup([a, b])).toEqual([
        expect.objectContaining({ refs: 1 }),
        undefined,
      ]);
      expect(await lookup(cat, S2, a)).toBeUndefined();
      expect(await cat.chunkIndex(S1).hasPack(w.pack)).toBe(false);
      expect(await cat.chunkIndex(S1).hasPack(extra)).toBe(false);
      expect(await cat.records.getImage("img-new")).toBeUndefined();
      expect(await cat.records.getImage("img-old")).toEqual(old);
      expect(await cat.records.ownerUsage("alpha")).toEqual(usageBefore);
      expect(await cat.records.ownerUsage("beta")).toEqual({ images: 0, bytes: 0, uploading: 0, staged: 0 });
      expect(await cat.records.listMembers("img-old")).toEqual([]);
      expect(await cat.records.listTasks()).toEqual([]);
      expect(await cat.getMeta("rolled")).toBeUndefined();
      expect(await cat.holdingsByStore()).toEqual(holdingsBefore);
    });

    it("a store first used by a unit of work that throws reads as empty after, and takes commits", async () => {
      const cat = catalog();
      const fresh = "store-first-used-in-a-rollback";
      const m = manifest([newChunk()]);
      const boom = new Error("boom");
      await expect(
        withLease(cat, (lease) =>
          cat.transact(async (tx) => {
            await tx.commitIngest(fresh, ingestCommit(m, lease, packWrite(m.distinct)));
            throw boom;
          }),
        ),
      ).rejects.toBe(boom);
      expect(await cat.chunkIndex(fresh).lookup(m.distinct)).toEqual([undefined]);
      expect(await collect(cat.chunkIndex(fresh).scanPacks())).toEqual([]);
      await ingest(cat, fresh, m);
      expect((await cat.chunkIndex(fresh).lookup(m.distinct))[0]?.refs).toBe(1);
    });

    it("alsoInTransaction runs inside the commit after the object is recorded, and its throw aborts the whole commit", async () => {
      const cat = catalog();
      const m = manifest([newChunk()]);
      await withLease(cat, (lease) =>
        cat.transact((tx) =>
          tx.commitIngest(S1, {
            ...ingestCommit(m, lease, packWrite(m.distinct)),
            alsoInTransaction: async (t) => {
              expect((await t.getObject(m.id))?.stores).toEqual({ [S1]: 1 });
              await t.putImage(image("img-also", { object: m.id.toString("hex") }));
            },
          }),
        ),
      );
      expect((await cat.records.getImage("img-also"))?.object).toBe(m.id.toString("hex"));

      const m2 = manifest([newChunk()]);
      const w2 = packWrite(m2.distinct);
      const boom = new Error("flip failed");
      await expect(
        withLease(cat, (lease) =>
          cat.transact((tx) =>
            tx.commitIngest(S1, {
              ...ingestCommit(m2, lease, w2),
              alsoInTransaction: async () => {
                throw boom;
              },
            }),
          ),
        ),
      ).rejects.toBe(boom);
      expect(await cat.getObject(m2.id)).toBeUndefined();
      expect(await lookup(cat, S1, m2.distinct[0] as Buffer)).toBeUndefined();
      expect(await cat.chunkIndex(S1).hasPack(w2.pack)).toBe(false);
    });
  });

  describe(`catalog conformance: ${name}: objects and references`, () => {
    const catalog = freshCatalog(make);

    it("commitIngest records manifest and object and gives each distinct chunk one reference per holding manifest, however often it is listed", async () => {
      const cat = catalog();
      const [a, b, c, d] = [newChunk(), newChunk(), newChunk(), newChunk()];
      const m1 = manifest([a, b, a, a, null, c]);
      const w1 = packWrite(m1.distinct);
      expect(await ingest(cat, S1, m1, w1, { md5: "1".repeat(32) })).toEqual({ created: true });
      const got = await cat.chunkIndex(S1).lookup([a, b, c]);
      expect(got.map((r) => r?.refs)).toEqual([1, 1, 1]);
      const locB = w1.written.get(b.toString("hex"));
      expect(got[1]).toEqual({ ...locB, refs: 1 });
      const obj = await cat.getObject(m1.id);
      expect(obj).toMatchObject({ size: 6 * CHUNK_LEN, chunkCount: 6, hashes: { md5: "1".repeat(32) } });
      expect(obj?.stores).toEqual({ [S1]: 1 });
      expect(typeof obj?.createdAt).toBe("string");
      expect((await cat.getManifest(m1.id))?.equals(m1.bytes)).toBe(true);
      expect(await cat.chunkIndex(S1).hasPack(w1.pack)).toBe(true);

      const m2 = manifest([a, a, d]);
      expect(await ingest(cat, S1, m2, packWrite([d]))).toEqual({ created: true });
      expect((await cat.chunkIndex(S1).lookup([a, b, c, d])).map((r) => r?.refs)).toEqual([2, 1, 1, 1]);
      const listed = (await collect(cat.scanObjects())).map((e) => e.id.toString("hex")).sort();
      expect(listed).toEqual([m1.id, m2.id].map((id) => id.toString("hex")).sort());
    });

    it("a second ingest of the same object in the same store adds a holder but no reference, and merges the digests it lacked", async () => {
      const cat = catalog();
      const a = newChunk();
      const m = manifest([a, a]);
      await ingest(cat, S1, m, packWrite([a]), { md5: "1".repeat(32) });
      const again = await ingest(cat, S1, m, packWrite([a]), {
        md5: "2".repeat(32),
        sha512: "5".repeat(128),
      });
      expect(again).toEqual({ created: false });
      const obj = await cat.getObject(m.id);
      expect(obj?.stores).toEqual({ [S1]: 2 });
      expect(obj?.hashes).toEqual({ md5: "1".repeat(32), sha512: "5".repeat(128) });
      expect((await lookup(cat, S1, a))?.refs).toBe(1);
    });

    it("releaseObject drops references only with the store's last holder, and the manifest and object with the last holder anywhere", async () => {
      const cat = catalog();
      const [a, b, x] = [newChunk(), newChunk(), newChunk()];
      const m = manifest([a, b, b]);
      const other = manifest([a, x]);
      await ingest(cat, S1, m);
      await ingest(cat, S1, m);
      await ingest(cat, S1, other);
      await withLease(cat, (lease) =>
        cat.transact((tx) => tx.commitCopy(S2, m.id, storeWrite(lease, packWrite(m.distinct)))),
      );
      const refs = async (store: string) => (await cat.chunkIndex(store).lookup([a, b])).map((r) => r?.refs);
      expect(await refs(S1)).toEqual([2, 1]);

      expect(await cat.transact((tx) => tx.releaseObject(S1, m.id))).toEqual({ removed: false });
      expect(await refs(S1)).toEqual([2, 1]);
      expect((await cat.getObject(m.id))?.stores).toEqual({ [S1]: 1, [S2]: 1 });

      expect(await cat.transact((tx) => tx.releaseObject(S1, m.id))).toEqual({ removed: false });
      expect(await refs(S1)).toEqual([1, 0]);
      expect(await refs(S2)).toEqual([1, 1]);
      expect((await cat.getObject(m.id))?.stores).toEqual({ [S2]: 1 });
      expect((await cat.getManifest(m.id))?.equals(m.bytes)).toBe(true);
      // At zero it stays indexed, where it was, until condemned.
      expect((await lookup(cat, S1, b))?.refs).toBe(0);
      expect((await collect(cat.chunkIndex(S1).scanChunks())).some((e) => e.id.equals(b))).toBe(true);
      expect(await cat.transact((tx) => tx.releaseObject(S1, m.id))).toEqual({ removed: false });
      expect(await refs(S1)).toEqual([1, 0]);

      expect(await cat.transact((tx) => tx.releaseObject(S2, m.id))).toEqual({ removed: true });
      expect(await refs(S2)).toEqual([0, 0]);
      expect(await cat.getObject(m.id)).toBeUndefined();
      expect(await cat.getManifest(m.id)).toBeUndefined();
      expect((await cat.getObject(other.id))?.stores).toEqual({ [S1]: 1 });
    });

    it("holdingsByStore sums each store's objects, holders and holders' logical bytes", async () => {
      const cat = catalog();
      const m1 = manifest([newChunk(), newChunk()]);
      const m2 = manifest([newChunk(), newChunk(), newChunk()]);
      await ingest(cat, S1, m1);
      await ingest(cat, S1, m1);
      await ingest(cat, S1, m2);
      await ingest(cat, S2, m1);
      const h = await cat.holdingsByStore();
      expect(h.get(S1)).toEqual({ objects: 2, holders: 3, logicalBytes: 2 * m1.size + m2.size });
      expect(h.get(S2)).toEqual({ objects: 1, holders: 1, logicalBytes: m1.size });
      expect(h.size).toBe(2);
    });

    it("markDamaged marks the object damaged", async () => {
      const cat = catalog();
      const m = manifest([newChunk()]);
      await ingest(cat, S1, m);
      await cat.transact((tx) => tx.markDamaged(m.id));
      expect((await cat.getObject(m.id))?.damaged).toBe(true);
    });

    it("commitCopy into a second store references that store's chunks there, separately from the first store's", async () => {
      const cat = catalog();
      const [a, b, c] = [newChunk(), newChunk(), newChunk()];
      const m = manifest([a, b, a]);
      const w1 = packWrite(m.distinct);
      await ingest(cat, S1, m, w1);
      await ingest(cat, S2, manifest([c, b]));
      // b is indexed in S2 already; the copy writes a only.
      const w2 = packWrite([a]);
      await withLease(cat, (lease) => cat.transact((tx) => tx.commitCopy(S2, m.id, storeWrite(lease, w2))));
      const inS2 = await cat.chunkIndex(S2).lookup([a, b, c]);
      expect(inS2[0]).toEqual({ ...w2.written.get(a.toString("hex")), refs: 1 });
      expect(inS2.map((r) => r?.refs)).toEqual([1, 2, 1]);
      const inS1 = await cat.chunkIndex(S1).lookup([a, b]);
      expect(inS1[0]).toEqual({ ...w1.written.get(a.toString("hex")), refs: 1 });
      expect(inS1[1]?.refs).toBe(1);
      expect(await cat.chunkIndex(S2).hasPack(w2.pack)).toBe(true);
      expect(await cat.chunkIndex(S1).hasPack(w2.pack)).toBe(false);
      expect((await cat.getObject(m.id))?.stores).toEqual({ [S1]: 1, [S2]: 1 });
    });

    it("a commit listing a chunk neither indexed, written nor condemned in the store fails whole with ChunkVanishedError and changes nothing", async () => {
      const cat = catalog();
      const [a, b] = [newChunk(), newChunk()];
      const m = manifest([a, b]);
      await ingest(cat, S1, m);
      const onlyA = packWrite([a]);
      await expect(
        withLease(cat, (lease) =>
          cat.transact(async (tx) => {
            await tx.setMeta("before-copy", 1);
            await tx.commitCopy(S2, m.id, {
              ...storeWrite(lease, onlyA),
              alsoInTransaction: (t) => t.putImage(image("img-copy")),
            });
          }),
        ),
      ).rejects.toBeInstanceOf(ChunkVanishedError);
      expect(await cat.chunkIndex(S2).lookup([a, b])).toEqual([undefined, undefined]);
      expect(await cat.chunkIndex(S2).hasPack(onlyA.pack)).toBe(false);
      expect((await cat.getObject(m.id))?.stores).toEqual({ [S1]: 1 });
      expect(await cat.records.getImage("img-copy")).toBeUndefined();
      expect(await cat.getMeta("before-copy")).toBeUndefined();

      // An ingest likewise: a new object whose chunk b was never written to S2.
      const m2 = manifest([a, b, newChunk()]);
      const w = packWrite([a, m2.distinct[2] as Buffer]);
      await expect(ingest(cat, S2, m2, w)).rejects.toBeInstanceOf(ChunkVanishedError);
      expect(await cat.getObject(m2.id)).toBeUndefined();
      expect(await cat.getManifest(m2.id)).toBeUndefined();
      expect(await cat.chunkIndex(S2).lookup(m2.distinct)).toEqual([undefined, undefined, undefined]);
      expect(await cat.chunkIndex(S2).hasPack(w.pack)).toBe(false);
    });
  });

  runCatalogGcConformance(name, make);
  runCatalogLeaseConformance(name, make);
  runCatalogRecordsConformance(name, make);
  runCatalogMetadefsConformance(name, make);
  runCatalogRestoreConformance(name, make);
}
