/**
 * Whether the stores' record objects say what the catalog says (`tessera image-records`), and
 * writing them where they do not: after a save that failed (a store down: the request went on,
 * record-objects.ts), and once for a data directory made before images had record objects.
 *
 * A record of an image the catalog lacks is an orphan: a deletion whose tombstone was not
 * written, or a catalog that lost the image (not rebuilt yet, its data in a store not rebuilt
 * yet, or a catalog restored from an older backup). Only the first may be settled here, and
 * the sequence numbers tell them apart: a record numbered after the last one rebuild-index
 * read (RESTORED_UP_TO) and before the catalog's current number was written by this catalog,
 * which has since deleted the image; any other is from a catalog since lost, and `--write`
 * leaves it for rebuild-index.
 */
import type { Engine } from "../engine/engine.js";
import {
  decodeRecord,
  keptImage,
  newestRecords,
  RESTORED_UP_TO,
  recordFolder,
  saveRecord,
} from "./record-objects.js";

export interface RecordCheckReport {
  images: number;
  /** Images whose newest record object is their state in the catalog. */
  current: number;
  /** Images without any record object. */
  missing: string[];
  /** Images whose newest record object says something else than the catalog. */
  stale: string[];
  /** Records of images the catalog lacks, not tombstones (store:name). */
  orphans: string[];
  /** With write: records (and tombstones) written, and the images whose write failed. */
  written?: number;
  failed?: string[];
}

/** Checks every image's record object; with `write`, saves those missing or stale, and settles orphans. */
export async function checkImageRecords(engine: Engine, write = false): Promise<RecordCheckReport> {
  const report: RecordCheckReport = { images: 0, current: 0, missing: [], stale: [], orphans: [] };
  const newest = await newestRecords(engine);
  const records = engine.catalog.records;
  for await (const { id } of records.scanImages("id", "asc")) {
    report.images++;
    const folder = recordFolder(id);
    const found = newest.get(folder);
    newest.delete(folder);
    const image = await records.getImage(id);
    const body = found && (await engine.recordObjects.get(found.store, found.name));
    const rec = body && decodeRecord(body);
    if (!found) report.missing.push(id);
    else if (!image || !rec || rec.deleted) report.stale.push(id);
    else if (
      canonical(rec) !== canonical({ image: keptImage(image), members: await records.listMembers(id) })
    )
      report.stale.push(id);
    else report.current++;
  }
  const orphans: { id: string; store: string; seq: number }[] = [];
  for (const n of newest.values()) {
    const rec = decodeRecord((await engine.recordObjects.get(n.store, n.name)) ?? Buffer.alloc(0));
    if (rec?.deleted) continue;
    report.orphans.push(`${n.store}:${n.name}`);
    if (rec) orphans.push({ id: rec.id, store: n.store, seq: n.seq });
  }
  if (!write) return report;
  report.written = 0;
  report.failed = [];
  const [now, restored] = await engine.catalog.transact(async (tx) => [
    await tx.nextSeq(),
    (await tx.getMeta<number>(RESTORED_UP_TO)) ?? 0,
  ]);
  const settled = orphans.filter((o) => o.seq > restored && o.seq < now);
  const saves = [...report.missing, ...report.stale].map((id) => ({ id, former: [] as string[] }));
  saves.push(...settled.map((o) => ({ id: o.id, former: [o.store] })));
  for (const { id, former } of saves) {
    try {
      await saveRecord(engine, id, former);
      report.written++;
    } catch {
      report.failed.push(id);
    }
  }
  return report;
}

/** What a record says of an image and its members, keys sorted (PostgreSQL's jsonb reorders them). */
function canonical(r: { image: unknown; members: unknown }): string {
  const sorted = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sorted);
    if (v === null || typeof v !== "object") return v;
    const o = v as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(o)
        .sort()
        .filter((k) => o[k] !== undefined)
        .map((k) => [k, sorted(o[k])]),
    );
  };
  return JSON.stringify(sorted({ image: r.image, members: r.members }));
}
