/**
 * An image's record, with its members, kept as an object on the stores holding its data
 * (docs/format.md, "Image records"), so that the catalog lost is not the images lost:
 * rebuild-index brings them back from there (record-restore.ts).
 *
 * Each save is a new object `images/<id>/<seq>.json` under the engine's records, never a
 * rewrite (backends write a name once), numbered by the catalog's sequence number taken in the
 * unit of work that read what it says: a save that read a later state carries a larger
 * number, whichever node wrote it and whenever it landed. A deleted image leaves a tombstone
 * numbered the same way. The newest number over every store is the image's state; a save
 * landing late (a slow node's) is older than what is there and never wins, and the next save
 * deletes it with the other older ones.
 */
import type { ImageRecord } from "../catalog/image-records.js";
import type { Member } from "../catalog/member-records.js";
import type { Engine } from "../engine/engine.js";
import type { ImageService } from "./images.js";

export const RECORD_FORMAT = "tessera-image-record";
/**
 * The catalog's meta key for the largest number of the records rebuild-index has read: a
 * record numbered up to it is from before the catalog was lost, one after it from this catalog.
 */
export const RESTORED_UP_TO = "recordsRestoredUpTo";
export const RECORD_VERSION = 1;

/** What one record object says: the image and its members, or that it was deleted. */
export type ImageRecordObject = {
  format: typeof RECORD_FORMAT;
  version: typeof RECORD_VERSION;
  /** The catalog's sequence number when the state below was read. */
  seq: number;
  id: string;
  written_at: string;
} & ({ deleted: false; image: ImageRecord; members: Member[] } | { deleted: true });

/** Where a save's failures are told: logged and counted by the server, never the request's. */
export interface RecordWriteLog {
  warn(fields: Record<string, unknown>, message: string): void;
}

const SEGMENT = /^[A-Za-z0-9-][A-Za-z0-9._-]{0,150}$/;

/** The folder of an image's records: its id, or its id's hex where the id is no name segment. */
export function recordFolder(id: string): string {
  const name = SEGMENT.test(id) ? id : `_${Buffer.from(id).toString("hex")}`;
  return `images/${name}/`;
}

/** The image id of a record folder (recordFolder's inverse). */
export function idOfFolder(folder: string): string {
  const name = folder.slice("images/".length, -1);
  return name.startsWith("_") ? Buffer.from(name.slice(1), "hex").toString() : name;
}

export function recordName(id: string, seq: number): string {
  return `${recordFolder(id)}${String(seq).padStart(16, "0")}.json`;
}

/** The sequence number in a record's name, or undefined for a name that is not a record's. */
export function seqOfName(name: string): number | undefined {
  const m = /^images\/[A-Za-z0-9_-][A-Za-z0-9._-]*\/(\d{16})\.json$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

export function encodeRecord(r: ImageRecordObject): Buffer {
  return Buffer.from(JSON.stringify(r));
}

/** The record in `bytes`, or undefined if it is not one this version reads. */
export function decodeRecord(bytes: Buffer): ImageRecordObject | undefined {
  try {
    const r = JSON.parse(bytes.toString("utf8")) as ImageRecordObject;
    return r?.format === RECORD_FORMAT && r.version === RECORD_VERSION ? r : undefined;
  } catch {
    return undefined;
  }
}

/** What a record keeps of an image: not the lease of an upload, which dies with its process. */
export function keptImage(rec: ImageRecord): ImageRecord {
  const { upload_lease: _, ...rest } = rec;
  return rest;
}

/** The stores keeping an image's record: its data's, or the default store's for an image without. */
export function homes(engine: Engine, rec: ImageRecord): string[] {
  const all = new Set([...rec.stores, ...(rec.staged ? [rec.staged.store] : [])]);
  const known = [...all].filter((s) => engine.stores.has(s));
  return known.length > 0 ? known : [engine.defaultStore.name];
}

/**
 * Writes image `id`'s record object as the catalog has it now (a tombstone if the catalog has
 * no such image) to every store keeping it, and removes older ones there and from `former`
 * stores (where its data was before). For whoever writes image records in a catalog unit of
 * work outside the image service's own paths (a migration with preset ids): call it once the
 * unit of work has committed. Resolves when every store has it; rejects with the first
 * store's failure after trying them all.
 */
export async function saveImageRecordObject(
  svc: ImageService,
  id: string,
  former: Iterable<string> = [],
): Promise<void> {
  await saveRecord(svc.engine, id, former);
}

/** saveImageRecordObject on the engine alone. */
export async function saveRecord(engine: Engine, id: string, former: Iterable<string> = []): Promise<void> {
  const state = await engine.catalog.transact(async (tx) => {
    const image = await tx.getImage(id);
    const members = image ? await tx.listMembers(id) : [];
    return { image, members, seq: await tx.nextSeq() };
  });
  const head = { format: RECORD_FORMAT, version: RECORD_VERSION, seq: state.seq, id } as const;
  const written_at = new Date().toISOString();
  const record: ImageRecordObject = state.image
    ? { ...head, written_at, deleted: false, image: keptImage(state.image), members: state.members }
    : { ...head, written_at, deleted: true };
  const elsewhere = new Set([...former, engine.defaultStore.name].filter((s) => engine.stores.has(s)));
  // A deleted image's tombstone goes wherever a record of it may be.
  const into = state.image ? homes(engine, state.image) : [...elsewhere];
  for (const s of into) elsewhere.delete(s);
  const errors: unknown[] = [];
  /** Whether `p` succeeded; its failure is kept, and the others still tried. */
  const attempt = async (p: Promise<void>): Promise<boolean> => {
    try {
      await p;
      return true;
    } catch (e) {
      errors.push(e);
      return false;
    }
  };
  // Older records go only once the new one is there: a store that takes no writes (full)
  // keeps the last record it had rather than none, and the stores the image left keep theirs
  // until every store keeping it has the new one.
  for (const s of into) {
    if (await attempt(engine.recordObjects.put(s, recordName(id, state.seq), encodeRecord(record))))
      await attempt(removeOlder(engine, s, id, state.seq));
  }
  if (errors.length > 0) throw errors[0];
  for (const s of elsewhere) await attempt(removeOlder(engine, s, id, state.seq));
  if (errors.length > 0) throw errors[0];
}

/** Removes image `id`'s records older than `seq` from `store`. */
async function removeOlder(engine: Engine, store: string, id: string, seq: number): Promise<void> {
  const older: string[] = [];
  for await (const name of engine.recordObjects.list(store, recordFolder(id))) {
    const n = seqOfName(name);
    if (n !== undefined && n < seq) older.push(name);
  }
  for (const name of older) await engine.recordObjects.delete(store, name);
}

/** Where the newest record of one image is. */
export interface NewestRecord {
  store: string;
  name: string;
  seq: number;
}

/** The newest record of each image, by its folder (recordFolder), over every configured store. */
export async function newestRecords(engine: Engine): Promise<Map<string, NewestRecord>> {
  const newest = new Map<string, NewestRecord>();
  for (const store of engine.stores.keys()) {
    for await (const name of engine.recordObjects.list(store, "images/")) {
      const seq = seqOfName(name);
      if (seq === undefined) continue;
      const folder = name.slice(0, name.lastIndexOf("/") + 1);
      const seen = newest.get(folder);
      if (!seen || seen.seq < seq) newest.set(folder, { store, name, seq });
    }
  }
  return newest;
}
