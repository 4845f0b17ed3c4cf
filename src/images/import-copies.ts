/**
 * Import step 3: copies of the active image to the other target stores (copy-image: to every
 * target), each moving only the chunks that store lacks, each store then moved out of
 * os_glance_importing_to_stores (and into os_glance_failed_import if its copy failed).
 */
import type { TaskRecord } from "../catalog/task-records.js";
import { GoneError } from "../errors.js";
import { FAILED, IMPORTING, LOCK, ours, storeList } from "./import-lock.js";
import type { ImportContext } from "./imports.js";

/** Copies to `stores`; a failure ends the import or, if allowed, is listed and passed. */
export async function copyTo(
  imp: ImportContext,
  task: TaskRecord,
  stores: string[],
  mustSucceed: boolean,
): Promise<void> {
  for (const store of stores) {
    try {
      await ours(imp.images.records, task.image_id, task.id);
      await imp.images.copyToStore(task.image_id, store);
      await moveStore(imp, task, store, false);
    } catch (e) {
      if (mustSucceed || e instanceof GoneError) throw e;
      await moveStore(imp, task, store, true);
    }
  }
}

/** A store done: out of os_glance_importing_to_stores, and into the failed list if it failed. */
async function moveStore(
  imp: ImportContext,
  task: TaskRecord,
  store: string,
  failed: boolean,
): Promise<void> {
  const svc = imp.images;
  await svc.engine.catalog.transact(async (tx) => {
    const rec = await tx.getImage(task.image_id);
    if (!rec || rec.properties[LOCK] !== task.id) return;
    const importing = storeList(rec.properties[IMPORTING]).filter((s) => s !== store);
    const failures = storeList(rec.properties[FAILED]);
    if (failed) failures.push(store);
    const properties = {
      ...rec.properties,
      [IMPORTING]: importing.join(","),
      [FAILED]: failures.join(","),
    };
    await tx.putImage({ ...rec, properties, updated_at: svc.now() }, rec);
  });
}
