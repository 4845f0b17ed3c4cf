/**
 * An image's data per store: copied into another store (moving only the chunks it lacks) or
 * removed from one, the record's `stores` changing in the unit of work that gives or drops
 * the store's hold on the data.
 */
import type { ImageRecord } from "../catalog/image-records.js";
import type { CopyResult } from "../engine/copy.js";
import { ConflictError, ForbiddenError } from "../errors.js";
import { type Access, findImage, ImageNotFoundError } from "./image-access.js";
import type { ImageService } from "./images.js";

/**
 * Copies an active image's data into `store`, moving only the chunks that store lacks
 * (engine copy); the image lists the store once the copy commits. Already there: no-op.
 */
export async function copyToStore(
  svc: ImageService,
  id: string,
  store: string,
): Promise<{ image: ImageRecord; copy?: CopyResult }> {
  const to = svc.engine.store(store).name;
  const rec = await svc.get(id);
  if (rec.status !== "active" || !rec.object) {
    throw new ConflictError(`Image ${id} is ${rec.status}; only active images can be copied`);
  }
  if (rec.stores.includes(to)) return { image: rec };
  let committed: ImageRecord | undefined;
  const copy = await svc.engine.copy(rec.object, to, {
    inCommit: async (tx) => {
      const now = await tx.getImage(id);
      if (now?.created_at !== rec.created_at || now.object !== rec.object || now.stores.includes(to)) {
        throw new ConflictError(`Image ${id} changed during its copy to ${to}`);
      }
      committed = { ...now, stores: [...now.stores, to], updated_at: svc.now() };
      await tx.putImage(committed, now);
    },
  });
  return { image: committed as ImageRecord, copy };
}

/**
 * Removes an image's data from one store, as Glance's DELETE /v2/stores/{store}/{image}:
 * only for an active image, never its last copy (403, Glance's words), and 404 for a store
 * it is not in.
 */
export function removeFromStore(
  svc: ImageService,
  id: string,
  store: string,
  access?: Access,
): Promise<ImageRecord> {
  return svc.engine.catalog.transact(
    async (tx) => {
      const rec = await findImage(tx, id, access);
      if (rec.status !== "active") {
        throw new ConflictError(
          "It's not allowed to remove image data from store if image status is not 'active'",
        );
      }
      if (rec.stores.length <= 1) {
        throw new ForbiddenError(
          "Cannot delete image data from the only store containing it. Consider deleting the image instead.",
        );
      }
      if (!rec.stores.includes(store)) {
        throw new ImageNotFoundError(
          id,
          "The image cannot be deleted because it does not exist in the requested store.",
        );
      }
      const next = { ...rec, stores: rec.stores.filter((s) => s !== store), updated_at: svc.now() };
      await tx.putImage(next, rec);
      await tx.releaseObject(store, Buffer.from(rec.object as string, "hex"));
      return next;
    },
    { useReserve: true },
  );
}
