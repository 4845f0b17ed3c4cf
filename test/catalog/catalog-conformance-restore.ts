/**
 * The catalog contract, part five (run by runCatalogConformance): what rebuild-index asks once
 * it has restored image records: a restored object's holders set from them, and the sequence
 * number raised past the numbers a lost catalog stamped on the stores' record objects.
 */
import { describe, expect, it } from "vitest";
import type { RebuildInput } from "../../src/catalog/catalog.js";
import {
  type CatalogFactory,
  CHUNK_LEN,
  freshCatalog,
  ingest,
  lookup,
  manifest,
  newChunk,
  newPack,
  S1,
  S2,
  type TestManifest,
} from "./catalog-fixtures.js";

/** rebuildStore's input for `m`'s chunks in one pack of `store`, `m` missing from the catalog. */
function rebuildOf(m: TestManifest, missing = true): RebuildInput {
  const entries = m.distinct.map((id, i) => ({ id, offset: i * CHUNK_LEN, length: CHUNK_LEN, flags: 0 }));
  return {
    packs: [
      {
        id: newPack(),
        rec: { size: 64, chunks: entries.length, createdAt: new Date().toISOString() },
        entries,
      },
    ],
    missing: missing ? [{ id: m.id, bytes: m.bytes, hashes: { md5: "r".repeat(32) } }] : [],
    adopted: missing ? [] : [m.id],
  };
}

export function runCatalogRestoreConformance(name: string, make: CatalogFactory): void {
  describe(`catalog conformance: ${name}: restoring from the stores`, () => {
    const catalog = freshCatalog(make);

    it("setRestoredHolders sets a restored object's holders only where it is held, and no reference changes", async () => {
      const cat = catalog();
      const [a, b] = [newChunk(), newChunk()];
      const m = manifest([a, b, a]);
      await cat.transact((tx) => tx.rebuildStore(S1, rebuildOf(m)));
      expect((await cat.getObject(m.id))?.stores).toEqual({ [S1]: 1 });
      const changed = await cat.transact((tx) => tx.setRestoredHolders(m.id, { [S1]: 3, [S2]: 2 }));
      expect(changed).toBe(true);
      const obj = await cat.getObject(m.id);
      expect(obj?.stores).toEqual({ [S1]: 3 });
      expect(obj?.restored).toBe(true);
      expect((await lookup(cat, S1, a))?.refs).toBe(1);
      // A count below one, or the same counts, change nothing.
      expect(await cat.transact((tx) => tx.setRestoredHolders(m.id, { [S1]: 0 }))).toBe(false);
      expect(await cat.transact((tx) => tx.setRestoredHolders(m.id, { [S1]: 3 }))).toBe(false);
      expect((await cat.getObject(m.id))?.stores).toEqual({ [S1]: 3 });
      // Adopted by a second store's rebuild, it is held there too and can be counted there.
      await cat.transact((tx) => tx.rebuildStore(S2, rebuildOf(m, false)));
      await cat.transact((tx) => tx.setRestoredHolders(m.id, { [S1]: 3, [S2]: 2 }));
      expect((await cat.getObject(m.id))?.stores).toEqual({ [S1]: 3, [S2]: 2 });
    });

    it("setRestoredHolders leaves an object that was not restored as it is", async () => {
      const cat = catalog();
      const m = manifest([newChunk()]);
      await ingest(cat, S1, m);
      expect(await cat.transact((tx) => tx.setRestoredHolders(m.id, { [S1]: 5 }))).toBe(false);
      expect((await cat.getObject(m.id))?.stores).toEqual({ [S1]: 1 });
      expect(await cat.transact((tx) => tx.setRestoredHolders(newChunk(), { [S1]: 5 }))).toBe(false);
    });

    it("raiseSeq puts the next sequence number above the one given, and never lowers it", async () => {
      const cat = catalog();
      const before = await cat.transact((tx) => tx.nextSeq());
      await cat.transact((tx) => tx.raiseSeq(before + 1000));
      const raised = await cat.transact((tx) => tx.nextSeq());
      expect(raised).toBeGreaterThan(before + 1000);
      await cat.transact((tx) => tx.raiseSeq(5));
      expect(await cat.transact((tx) => tx.nextSeq())).toBeGreaterThan(raised);
      expect((await cat.beginLease("after the raise", 60_000)).seq).toBeGreaterThan(raised);
    });

    it("a unit of work that throws after setRestoredHolders and raiseSeq leaves both as they were", async () => {
      const cat = catalog();
      const m = manifest([newChunk()]);
      await cat.transact((tx) => tx.rebuildStore(S1, rebuildOf(m)));
      const before = await cat.transact((tx) => tx.nextSeq());
      await expect(
        cat.transact(async (tx) => {
          await tx.setRestoredHolders(m.id, { [S1]: 4 });
          await tx.raiseSeq(before + 10_000);
          throw new Error("no");
        }),
      ).rejects.toThrow("no");
      expect((await cat.getObject(m.id))?.stores).toEqual({ [S1]: 1 });
      expect(await cat.transact((tx) => tx.nextSeq())).toBeLessThan(before + 10_000);
    });
  });
}
