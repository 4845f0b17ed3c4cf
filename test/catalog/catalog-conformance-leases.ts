/**
 * The catalog contract, part three (run by runCatalogConformance): leases and sequence numbers.
 */
import { describe, expect, it } from "vitest";
import { LeaseLostError } from "../../src/errors.js";
import {
  type CatalogFactory,
  collect,
  freshCatalog,
  image,
  ingest,
  ingestCommit,
  manifest,
  newChunk,
  newPack,
  packObject,
  packWrite,
  S1,
  S2,
  sleep,
  storeWrite,
} from "./catalog-fixtures.js";

export function runCatalogLeaseConformance(name: string, make: CatalogFactory): void {
  describe(`catalog conformance: ${name}: leases and sequence numbers`, () => {
    const catalog = freshCatalog(make);

    it("exclusively runs one holder of a name at a time, in turn, and holders of other names alongside", async () => {
      const cat = catalog();
      const log: string[] = [];
      const hold = (who: string, name: string, ms: number) =>
        cat.exclusively(name, async () => {
          log.push(`${who} in`);
          await sleep(ms);
          log.push(`${who} out`);
          return who;
        });
      const results = await Promise.all([hold("a", "gc", 60), hold("b", "gc", 10), hold("c", "other", 10)]);
      expect(results).toEqual(["a", "b", "c"]);
      // "c" holds another lock: it ran inside "a"'s turn; "b" waited for "a" to let go.
      expect(log.indexOf("c out")).toBeLessThan(log.indexOf("a out"));
      expect(log.indexOf("b in")).toBeGreaterThan(log.indexOf("a out"));
      // A holder that throws lets go too.
      await expect(cat.exclusively("gc", async () => Promise.reject(new Error("boom")))).rejects.toThrow(
        "boom",
      );
      expect(await cat.exclusively("gc", async () => "after")).toBe("after");
    });

    it("beginLease records a live lease with its purpose and a ttl from now; renewLease extends it; endLease ends it for good", async () => {
      const cat = catalog();
      const t0 = Date.now();
      const l = await cat.beginLease("upload img-1", 60_000);
      const t1 = Date.now();
      expect(l.holder.what).toBe("upload img-1");
      expect(l.until).toBeGreaterThanOrEqual(t0 + 60_000);
      expect(l.until).toBeLessThanOrEqual(t1 + 60_000);
      expect((await cat.liveLeases()).find((x) => x.id === l.id)).toMatchObject({ seq: l.seq });

      const t2 = Date.now();
      expect(await cat.renewLease(l.id, 600_000)).toBe(true);
      expect((await cat.liveLeases()).find((x) => x.id === l.id)?.until).toBeGreaterThanOrEqual(t2 + 600_000);

      await cat.endLease(l.id);
      expect((await cat.liveLeases()).map((x) => x.id)).not.toContain(l.id);
      expect(await cat.renewLease(l.id, 60_000)).toBe(false);
      expect((await cat.liveLeases()).map((x) => x.id)).not.toContain(l.id);
    });

    it("a lease past its ttl lapses: it leaves liveLeases, and renewLease refuses it and never revives it", async () => {
      const cat = catalog();
      const l = await cat.beginLease("short", 50);
      const keep = await cat.beginLease("long", 60_000);
      await sleep(150);
      const live = (await cat.liveLeases()).map((x) => x.id);
      expect(live).not.toContain(l.id);
      expect(live).toContain(keep.id);
      expect(await cat.renewLease(l.id, 60_000)).toBe(false);
      expect((await cat.liveLeases()).map((x) => x.id)).not.toContain(l.id);
      expect(await cat.renewLease(l.id, 60_000)).toBe(false);
    });

    it("a commit whose lease lapsed or ended fails with LeaseLostError and changes nothing", async () => {
      const cat = catalog();
      const lapsed = await cat.beginLease("stalled write", 50);
      const ended = await cat.beginLease("ended write", 60_000);
      await cat.endLease(ended.id);
      await sleep(150);
      const held = manifest([newChunk()]);
      await ingest(cat, S1, held);
      for (const lease of [lapsed.id, ended.id]) {
        const m = manifest([newChunk(), newChunk()]);
        const w = packWrite(m.distinct);
        await expect(
          cat.transact(async (tx) => {
            await tx.putImage(image(`img-${lease}`));
            await tx.commitIngest(S1, ingestCommit(m, lease, w));
          }),
        ).rejects.toBeInstanceOf(LeaseLostError);
        expect(await cat.getObject(m.id)).toBeUndefined();
        expect(await cat.getManifest(m.id)).toBeUndefined();
        expect(await cat.chunkIndex(S1).lookup(m.distinct)).toEqual([undefined, undefined]);
        expect(await cat.chunkIndex(S1).hasPack(w.pack)).toBe(false);
        expect(await cat.records.getImage(`img-${lease}`)).toBeUndefined();

        const w2 = packWrite(held.distinct);
        await expect(
          cat.transact((tx) => tx.commitCopy(S2, held.id, storeWrite(lease, w2))),
        ).rejects.toBeInstanceOf(LeaseLostError);
        expect((await cat.getObject(held.id))?.stores).toEqual({ [S1]: 1 });
        expect(await cat.chunkIndex(S2).lookup(held.distinct)).toEqual([undefined]);
        expect(await cat.chunkIndex(S2).hasPack(w2.pack)).toBe(false);
      }
    });

    it("leasesBefore is true only while a live lease began before the given sequence number", async () => {
      const cat = catalog();
      const l = await cat.beginLease("write", 60_000);
      const short = await cat.beginLease("short write", 50);
      const anyBefore = (seq: number) => cat.transact((tx) => tx.leasesBefore(seq, Date.now()));
      expect(await anyBefore(l.seq)).toBe(false);
      expect(await anyBefore(l.seq + 1)).toBe(true);
      await cat.endLease(l.id);
      expect(await anyBefore(short.seq + 1)).toBe(true);
      await sleep(150);
      expect(await anyBefore(short.seq + 1)).toBe(false);
      const late = await cat.beginLease("late write", 60_000);
      expect(await anyBefore(late.seq)).toBe(false);
      expect(await anyBefore(late.seq + 1)).toBe(true);
    });

    it("sequence numbers strictly increase across leases, nextSeq and GC stamps", async () => {
      const cat = catalog();
      const seqs: number[] = [];
      seqs.push((await cat.beginLease("one", 60_000)).seq);
      seqs.push(await cat.transact((tx) => tx.nextSeq()));
      seqs.push((await cat.beginLease("two", 60_000)).seq);
      const stray = packObject(newPack());
      await cat.transact((tx) => tx.trashOrphans(S1, [{ name: stray, size: 1 }], Date.now()));
      const [trashed] = await collect(cat.chunkIndex(S1).scanTrash());
      seqs.push(trashed?.entry.seq as number);
      seqs.push(...(await cat.transact(async (tx) => [await tx.nextSeq(), await tx.nextSeq()])));
      seqs.push((await cat.beginLease("three", 60_000)).seq);
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1] as number);
    });
  });
}
