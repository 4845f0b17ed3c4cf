/**
 * Images taken over from another image service (the migration from Glance, src/migrate/): the
 * record written as that service shows it, with the id, owner, created_at and status no API
 * call may set; its data streamed in as an upload whose commit checks the whole-image hashes
 * the other service recorded, so that data which does not match is never activated; its
 * members as they stand there.
 *
 * Quotas are not applied: the images already exist, under the other service's quotas, and an
 * adoption refused halfway would leave a tenant with some images moved and some not.
 */
import { IMAGE_BASE_FIELDS, type ImageRecord, type ImageStatus } from "../catalog/image-records.js";
import type { Member } from "../catalog/member-records.js";
import type { CommittedObject, IngestResult } from "../engine/ingest.js";
import { ConflictError, TesseraError } from "../errors.js";
import type { ImageService } from "./images.js";
import { upload } from "./upload.js";

/** What an adoption sets of a record: everything but the data, which only an upload sets. */
export type AdoptedFields = Pick<
  ImageRecord,
  | "id"
  | "name"
  | "visibility"
  | "protected"
  | "os_hidden"
  | "owner"
  | "disk_format"
  | "container_format"
  | "min_disk"
  | "min_ram"
  | "created_at"
  | "tags"
  | "properties"
>;

/** The statuses an adopted image may end in: those the other service shows at rest. */
export type AdoptedStatus = Extract<ImageStatus, "queued" | "active" | "deactivated" | "killed">;

/** The whole-image digests the other service recorded for the data (hex). */
export interface ExpectedData {
  size: number | null;
  checksum: string | null;
  osHash: { algo: string; value: string } | null;
}

/** Adopted data whose size or digests differ from what the other service recorded. */
export class DataMismatchError extends TesseraError {
  constructor(message: string) {
    super("data_mismatch", message);
  }
}

const ADOPTED_KEYS = [...IMAGE_BASE_FIELDS, "created_at", "properties"] as const;

/**
 * Whether `rec` already carries every adopted field as `fields` has it. Tags are a set (Glance
 * keeps them in a Python set: their order follows each process's hash seed) and properties a
 * map (PostgreSQL's jsonb reorders keys): neither order counts.
 */
export function sameFields(rec: ImageRecord, fields: AdoptedFields): boolean {
  return ADOPTED_KEYS.every((k) => canonical(k, rec[k]) === canonical(k, fields[k]));
}

function canonical(key: string, value: unknown): string {
  if (key === "tags") return JSON.stringify([...new Set(value as string[])].sort());
  if (key === "properties")
    return JSON.stringify(Object.entries(value as object).sort(([a], [b]) => (a < b ? -1 : 1)));
  return JSON.stringify(value);
}

/**
 * Writes the adopted fields: a new record (queued, without data) or the existing one's fields
 * replaced, its data and status kept. Returns the record as it now stands.
 */
export function adoptRecord(svc: ImageService, fields: AdoptedFields): Promise<ImageRecord> {
  return svc.engine.catalog.transact(async (tx) => {
    const old = await tx.getImage(fields.id);
    if (old && sameFields(old, fields)) return old;
    const base: ImageRecord = old ?? {
      ...svc.withoutData({ ...fields, status: "queued", updated_at: fields.created_at }),
    };
    const next: ImageRecord = { ...base, ...fields, tags: [...new Set(fields.tags)], updated_at: svc.now() };
    await tx.putImage(next, old);
    return next;
  });
}

/**
 * Streams `source` in as the queued image's data (an upload, into the default store), refused
 * before its commit unless its size and digests are those expected: the image is then queued
 * again with nothing attached, as after any failed upload. It commits in `status` (a
 * deactivated image is never active on the way).
 */
export function adoptData(
  svc: ImageService,
  id: string,
  source: AsyncIterable<Uint8Array>,
  expected: ExpectedData,
  status: "active" | "deactivated",
  onIngested?: (r: IngestResult) => void,
): Promise<ImageRecord> {
  const [md5, osHash] = svc.engine.hashAlgorithms;
  if (expected.osHash && expected.osHash.algo !== svc.osHashAlgo) {
    throw new ConflictError(
      `the image's os_hash_algo is ${expected.osHash.algo} but Tessera's osHashAlgo is ${svc.osHashAlgo}: ` +
        "set osHashAlgo to the same algorithm to verify it",
    );
  }
  const verify = (obj: CommittedObject) => {
    const wrong: string[] = [];
    if (expected.size !== null && obj.size !== expected.size)
      wrong.push(`size ${obj.size} != ${expected.size}`);
    const got = (algo: string | undefined) => (algo ? obj.hashes[algo] : undefined);
    if (expected.checksum !== null && got(md5) !== expected.checksum) {
      wrong.push(`md5 ${got(md5)} != ${expected.checksum}`);
    }
    if (expected.osHash && got(osHash) !== expected.osHash.value) {
      wrong.push(`${expected.osHash.algo} ${got(osHash)} != ${expected.osHash.value}`);
    }
    if (wrong.length > 0) throw new DataMismatchError(`image ${id}: data differs (${wrong.join("; ")})`);
  };
  return upload(svc, id, source, undefined, undefined, { verify, status, onIngested });
}

/**
 * Sets the status the other service shows and its updated_at. Active and deactivated need the
 * data in; queued and killed have none.
 */
export function adoptStatus(
  svc: ImageService,
  id: string,
  status: AdoptedStatus,
  updatedAt: string,
): Promise<ImageRecord> {
  return svc.engine.catalog.transact(async (tx) => {
    const old = await tx.getImage(id);
    if (!old) throw new ConflictError(`image ${id} vanished during its adoption`);
    const hasData = old.object !== null;
    if (hasData !== (status === "active" || status === "deactivated")) {
      throw new ConflictError(`image ${id} cannot be ${status} ${hasData ? "with" : "without"} data`);
    }
    if (old.status === status && old.updated_at === updatedAt) return old;
    const next = { ...old, status, updated_at: updatedAt };
    await tx.putImage(next, old);
    return next;
  });
}

/**
 * Makes the image's members those given (status and times as given): adds and changes what
 * differs, removes the rest. Returns whether anything changed.
 */
export function adoptMembers(svc: ImageService, id: string, members: Member[]): Promise<boolean> {
  return svc.engine.catalog.transact(async (tx) => {
    const have = new Map((await tx.listMembers(id)).map((m) => [m.member_id, m]));
    let changed = false;
    for (const m of members) {
      const old = have.get(m.member_id);
      have.delete(m.member_id);
      if (old?.status === m.status && old.created_at === m.created_at && old.updated_at === m.updated_at)
        continue;
      await tx.putMember(m);
      changed = true;
    }
    for (const gone of have.keys()) {
      await tx.removeMember(id, gone);
      changed = true;
    }
    return changed;
  });
}

/**
 * Takes back an adoption whose data could not come in (refused by the format rules, not what
 * the other service recorded, gone from it): the record and its members are removed if it
 * still has no data, so that no image is left in Tessera that the other service has whole.
 */
export function abandonAdoption(svc: ImageService, id: string): Promise<void> {
  return svc.engine.catalog.transact(async (tx) => {
    const rec = await tx.getImage(id);
    if (!rec || rec.object !== null || rec.status !== "queued") return;
    // Its members go with it (removeImage's contract).
    await tx.removeImage(rec);
  });
}
