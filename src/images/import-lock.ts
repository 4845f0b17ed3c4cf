/**
 * An import's hold on its image, in the image's properties as Glance keeps it:
 * os_glance_import_task (the lock: one import per image at a time, broken only when its task is
 * an hour stale), os_glance_importing_to_stores and os_glance_failed_import; and the image as a
 * failed or interrupted import leaves it.
 */
import type { CatalogTx, RecordsReader } from "../catalog/catalog.js";
import type { ImageRecord } from "../catalog/image-records.js";
import { ConflictError, GoneError } from "../errors.js";
import { releaseData } from "./image-data.js";
import type { ImageService } from "./images.js";
import { endTask } from "./import-tasks.js";

export const LOCK = "os_glance_import_task";
export const IMPORTING = "os_glance_importing_to_stores";
export const FAILED = "os_glance_failed_import";
/** A lock is stale after an hour (two while its task is pending). */
const LOCK_EXPIRY_MS = 3600 * 1000;

/** The properties without the import lock. */
export function unlocked(properties: Record<string, string>): Record<string, string> {
  const { [LOCK]: _, ...rest } = properties;
  return rest;
}

export function storeList(v: string | undefined): string[] {
  return v ? v.split(",").filter((s) => s !== "") : [];
}

/**
 * Inside a unit of work: Glance's import lock. A live task's lock is a 409; one an hour stale
 * is broken (its task, if still running, ended as failed).
 */
export async function checkLock(tx: CatalogTx, rec: ImageRecord): Promise<void> {
  const holder = rec.properties[LOCK];
  if (!holder) return;
  const t = await tx.getTask(holder);
  const expiry = t?.status === "pending" ? 2 * LOCK_EXPIRY_MS : LOCK_EXPIRY_MS;
  if (t && Date.now() - Date.parse(t.updated_at) < expiry) {
    throw new ConflictError(
      `New operation on image '${rec.id}' is not permitted as prior operation is still in progress`,
    );
  }
  if (t && (t.status === "pending" || t.status === "processing"))
    await endTask(tx, t, "failure", "Expired lock preempted");
}

/**
 * The image, if it is still the one task `taskId` imports into (not deleted, lock held); read
 * through `records` (the unit of work's tx inside one).
 */
export async function ours(records: RecordsReader, id: string, taskId: string): Promise<ImageRecord> {
  const rec = await records.getImage(id);
  if (!rec || rec.properties[LOCK] !== taskId)
    throw new GoneError(`Image ${id} was deleted during its import.`);
  return rec;
}

/**
 * Inside a unit of work: the image as a failed import of `method` leaves it. New data
 * (web-download, glance-direct) goes back to queued with everything it brought released, even
 * stores it already reached (Glance's all_stores_must_succeed); an image being copied stays
 * active. Stores not reached are listed as failed; the lock is dropped.
 */
export async function settleFailed(
  svc: ImageService,
  tx: CatalogTx,
  rec: ImageRecord,
  taskId: string,
  method: string,
): Promise<void> {
  if (rec.properties[LOCK] !== taskId) return;
  // A store the image is in was reached, whatever the lists say (a crash can fall between a
  // copy's commit and its bookkeeping).
  const failed = [...storeList(rec.properties[FAILED]), ...storeList(rec.properties[IMPORTING])].filter(
    (s) => !rec.stores.includes(s),
  );
  const properties = unlocked({ ...rec.properties, [IMPORTING]: "", [FAILED]: failed.join(",") });
  let next: ImageRecord = { ...rec, properties, updated_at: svc.now() };
  if (method !== "copy-image" && (rec.status === "importing" || rec.status === "active")) {
    await releaseData(tx, rec);
    next = { ...svc.withoutData(next), status: "queued", staged: null };
  }
  await tx.putImage(next, rec);
}
