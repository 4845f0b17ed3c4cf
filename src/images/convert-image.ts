/**
 * An image's data converted to another disk format with qemu-img (engine/convert.ts): the step
 * Glance's image_conversion import plugin performs, and `tessera convert`.
 */
import type { ImageRecord } from "../catalog/image-records.js";
import { convertObject } from "../engine/convert.js";
import { ConflictError } from "../errors.js";
import type { ConversionLimits } from "../formats/qemu-img.js";
import { releaseData } from "./image-data.js";
import type { ImageService } from "./images.js";

/**
 * Converts an active image's data to `to`: the image stays active on its old data meanwhile,
 * then takes the new data, disk_format, sizes and checksums in the one unit of work that
 * commits them, and its old data is released. The result is in the image's first store only
 * (copies to its others are for the caller to make again).
 */
export async function convertImage(
  svc: ImageService,
  id: string,
  to: string,
  options: { limits?: ConversionLimits; scratchDir?: string } = {},
): Promise<ImageRecord> {
  const rec = await svc.get(id);
  if (rec.status !== "active" || !rec.object) {
    throw new ConflictError(`Image ${id} is ${rec.status}; only active images can be converted`);
  }
  if (rec.disk_format === to) return rec;
  let committed: ImageRecord | undefined;
  const store = rec.stores[0] ?? svc.engine.defaultStore.name;
  await convertObject(svc.engine, rec.object, {
    from: rec.disk_format as string,
    to,
    policy: svc.formats,
    maxBytes: svc.sizeCap,
    store,
    ...options,
    inCommit: async (tx, obj, inspection) => {
      const now = await tx.getImage(id);
      if (now?.created_at !== rec.created_at || now.object !== rec.object || now.status !== "active") {
        throw new ConflictError(`Image ${id} changed during its conversion`);
      }
      const data = svc.withData(now, obj, inspection.detection.virtualSize);
      committed = { ...data, disk_format: to, stores: [store] };
      await tx.putImage(committed, now);
      await releaseData(tx, now);
    },
  });
  return committed as ImageRecord;
}
