/**
 * Imports across a restart: tasks a crash cut off (pending or processing: no import outlives
 * its process) are failed and their images left as a failure leaves them, never stuck
 * importing; but an image a crash finds active stays active with what it had committed.
 * Ended tasks past their expiry are removed.
 */
import type { CatalogTx } from "../catalog/catalog.js";
import type { ImageRecord } from "../catalog/image-records.js";
import type { ImageService } from "./images.js";
import { settleFailed } from "./import-lock.js";
import { endTask, expired, methodOf } from "./import-tasks.js";

/** Recording a failure must work on a full disk: it may use the catalog's space reserve. */
const PUT_BACK = { useReserve: true };

/**
 * Settles what the imports a crash cut off left, in one unit of work: those of `node` (this
 * node, restarting) and those that name no node; another node's imports run on.
 */
export async function recoverImports(svc: ImageService, node?: string): Promise<void> {
  const now = Date.now();
  await svc.engine.catalog.transact(async (tx) => {
    for (const t of await tx.listTasks()) {
      const mine = t.node === undefined || node === undefined || t.node === node;
      if ((t.status === "pending" || t.status === "processing") && mine) {
        await endTask(tx, t, "failure", "The import was interrupted: the server stopped before it finished.");
        const rec = await tx.getImage(t.image_id);
        if (rec) await settleInterrupted(svc, tx, rec, t.id, methodOf(t));
      } else if (expired(t, now)) {
        await tx.removeTask(t);
      }
    }
  }, PUT_BACK);
}

/**
 * Inside a unit of work at start: the image as a crash left it. What the import had committed
 * stays: an image already active keeps its data in the stores it reached (a crash is not
 * Glance's all_stores_must_succeed failure, which reverts a live import; reverting here
 * would throw away an image clients may already have downloaded). Stores not reached are
 * listed as failed. An image not yet active is settled as a failure.
 */
function settleInterrupted(
  svc: ImageService,
  tx: CatalogTx,
  rec: ImageRecord,
  taskId: string,
  method: string,
): Promise<void> {
  return settleFailed(svc, tx, rec, taskId, rec.status === "active" ? "copy-image" : method);
}
