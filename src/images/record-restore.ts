/**
 * Image records brought back from the stores' record objects (record-objects.ts) once
 * rebuild-index has restored the objects they point at: the end of every `tessera
 * rebuild-index`, for a catalog lost whole or in part.
 *
 * The newest record of each image over every configured store is its state; a tombstone
 * keeps a deleted image deleted, whatever older record a slow node left behind. An image the
 * catalog has is left as it is (the catalog is the truth while it lives). One whose data is
 * in no object the catalog knows yet waits for the rebuild of a store that carries it. The
 * objects' holders, a guess on the objects rebuild-index restored, become the number of
 * images holding each in each store, and the owners' usage follows from the records
 * (putImage tallies it).
 */
import type { ImageRecord } from "../catalog/image-records.js";
import type { Engine } from "../engine/engine.js";
import {
  decodeRecord,
  type ImageRecordObject,
  idOfFolder,
  newestRecords,
  RESTORED_UP_TO,
} from "./record-objects.js";

export interface RestoreReport {
  /** Images brought back, with their members. */
  restored: number;
  members: number;
  /** Images the catalog has already, left as they are. */
  present: number;
  /** Images whose newest record is a tombstone: deleted, and staying so. */
  deleted: number;
  /** Images whose data no object of the catalog holds yet (a store not rebuilt yet). */
  waiting: string[];
  /** Newest records that could not be read (another version's, or damaged). */
  unreadable: string[];
  /** Images whose data is an object the catalog held before the rebuild: not put back. */
  skipped: string[];
  /** Restored objects whose holders were set from the images. */
  holdersSet: number;
}

export async function restoreImageRecords(engine: Engine): Promise<RestoreReport> {
  const report: RestoreReport = {
    restored: 0,
    members: 0,
    present: 0,
    deleted: 0,
    waiting: [],
    unreadable: [],
    skipped: [],
    holdersSet: 0,
  };
  const newest = await numberAboveStoredRecords(engine);
  for (const [folder, n] of newest) {
    // An image the catalog has is left as it is: its record need not even be read.
    if (await engine.catalog.records.getImage(idOfFolder(folder))) {
      report.present++;
      continue;
    }
    const body = await engine.recordObjects.get(n.store, n.name);
    const rec = body && decodeRecord(body);
    if (!rec) report.unreadable.push(`${n.store}:${n.name}`);
    else if (rec.deleted) report.deleted++;
    else await restoreOne(engine, rec, report);
  }
  report.holdersSet = await countHolders(engine);
  return report;
}

/**
 * Numbers the catalog's saves from now on above every record on the stores, and marks those as
 * read by a rebuild (RESTORED_UP_TO): for a catalog rebuilt, and for one restored from a backup,
 * whose number is the snapshot's while the stores hold records written after it (copied after
 * the snapshot, or never copied: S3, Swift). Otherwise a save of the restored catalog would be
 * numbered below a stale record, which would win on the next rebuild (a deletion undone, an
 * older state back). Returns the newest records, by image folder.
 */
export async function numberAboveStoredRecords(
  engine: Engine,
): Promise<Awaited<ReturnType<typeof newestRecords>>> {
  const newest = await newestRecords(engine);
  const maxSeq = [...newest.values()].reduce((max, n) => Math.max(max, n.seq), 0);
  await engine.catalog.transact(async (tx) => {
    await tx.raiseSeq(maxSeq);
    const before = (await tx.getMeta<number>(RESTORED_UP_TO)) ?? 0;
    await tx.setMeta(RESTORED_UP_TO, Math.max(before, maxSeq));
  });
  return newest;
}

async function restoreOne(
  engine: Engine,
  rec: Extract<ImageRecordObject, { deleted: false }>,
  report: RestoreReport,
): Promise<void> {
  const image: ImageRecord = { ...rec.image, stores: rec.image.stores.filter((s) => engine.stores.has(s)) };
  const objects = [image.object, image.staged?.object].filter((o): o is string => typeof o === "string");
  for (const o of objects) {
    const known = await engine.catalog.getObject(Buffer.from(o, "hex"));
    if (!known) {
      report.waiting.push(image.id);
      return;
    }
    // An object the catalog held before this rebuild counts its holders already: an image put
    // back onto it would not be one of them, and its data would go when they do. Such a record
    // is an orphan of a live catalog (a deletion whose tombstone was not written): left alone.
    if (!known.restored) {
      report.skipped.push(image.id);
      return;
    }
  }
  const done = await engine.catalog.transact(async (tx) => {
    if (await tx.getImage(image.id)) return false;
    await tx.putImage(image);
    for (const m of rec.members) await tx.putMember({ ...m, image_id: image.id });
    return true;
  });
  if (!done) {
    report.present++;
    return;
  }
  report.restored++;
  report.members += rec.members.length;
}

/** Sets each restored object's holders to the images holding it, per store; how many changed. */
async function countHolders(engine: Engine): Promise<number> {
  const counts = new Map<string, Record<string, number>>();
  const hold = (object: string, store: string) => {
    const c = counts.get(object) ?? {};
    c[store] = (c[store] ?? 0) + 1;
    counts.set(object, c);
  };
  const records = engine.catalog.records;
  const ids: string[] = [];
  for await (const { id } of records.scanImages("id", "asc")) ids.push(id);
  for (let i = 0; i < ids.length; i += 500) {
    for (const rec of await records.getImages(ids.slice(i, i + 500))) {
      if (rec?.object) for (const s of rec.stores) hold(rec.object, s);
      if (rec?.staged) hold(rec.staged.object, rec.staged.store);
    }
  }
  let changed = 0;
  const all = [...counts];
  for (let i = 0; i < all.length; i += 500) {
    changed += await engine.catalog.transact(async (tx) => {
      let n = 0;
      for (const [object, holders] of all.slice(i, i + 500)) {
        if (await tx.setRestoredHolders(Buffer.from(object, "hex"), holders)) n++;
      }
      return n;
    });
  }
  return changed;
}
