/** An image's dedup accounting (GET /tessera/v1/images/{id}/stats, `tessera stats --image`). */
import { holders } from "../catalog/catalog.js";
import type { ImageRecord } from "../catalog/image-records.js";
import type { Engine } from "../engine/engine.js";
import type { ObjectStats } from "../engine/stats.js";

export type ImageStats = { image: string } & Partial<ObjectStats> & { imagesWithSameData?: number };

/**
 * An image's dedup accounting: its object's (what it alone references, what it shares, in its
 * first store) and how many other images have the very same data. Read-only: usable beside a
 * running server.
 */
export async function imageStats(engine: Engine, rec: ImageRecord): Promise<ImageStats> {
  if (!rec.object) return { image: rec.id };
  const obj = await engine.stat(rec.object);
  return {
    image: rec.id,
    ...(await engine.objectStats(rec.object, rec.stores[0])),
    imagesWithSameData: holders(obj) - 1,
  };
}
