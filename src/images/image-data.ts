/**
 * An image's holds on the engine's objects, dropped inside the unit of work that detaches the
 * data from the record (delete, failed import, conversion): the record and the holds change
 * together or not at all.
 */
import type { CatalogTx } from "../catalog/catalog.js";
import type { ImageRecord } from "../catalog/image-records.js";

/**
 * Inside a unit of work: drops the image's hold on its data in every store it is in, and on
 * data staged for an import.
 */
export async function releaseData(tx: CatalogTx, rec: ImageRecord): Promise<void> {
  if (rec.staged) await releaseStaged(tx, rec.staged);
  if (!rec.object) return;
  const id = Buffer.from(rec.object, "hex");
  for (const s of rec.stores) await tx.releaseObject(s, id);
}

/** Inside a unit of work: drops the hold an import's staged data has. */
export async function releaseStaged(
  tx: CatalogTx,
  staged: NonNullable<ImageRecord["staged"]>,
): Promise<void> {
  await tx.releaseObject(staged.store, Buffer.from(staged.object, "hex"));
}
