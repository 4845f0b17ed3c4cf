/**
 * The check that makes a backup's consistency a fact rather than an argument: every pack a
 * catalog names in a store is among the objects copied of that store, with the size the
 * catalog records. Run on the catalog's copy after a backup, and on the restored catalog
 * after a restore.
 */
import type { Catalog } from "../catalog/catalog.js";
import { packName, STORE_FORMAT_OBJECT } from "../store/names.js";
import { BackupError } from "./backup-manifest.js";

/**
 * How many packs `catalog` names in `store`; throws BackupError naming the first one missing
 * from `objects` (name → size) or of another size, or a missing format record.
 */
export async function checkPacks(
  catalog: Catalog,
  store: string,
  objects: ReadonlyMap<string, number>,
): Promise<number> {
  if (!objects.has(STORE_FORMAT_OBJECT)) {
    throw new BackupError(`store ${store}: its format record (${STORE_FORMAT_OBJECT}) was not copied`);
  }
  let missing = 0;
  let first = "";
  let packs = 0;
  for await (const { id, rec } of catalog.chunkIndex(store).scanPacks()) {
    packs++;
    const name = packName(id.toString("hex"));
    const size = objects.get(name);
    if (size === rec.size) continue;
    if (missing++ === 0)
      first = size === undefined ? `${name} is missing` : `${name} has ${size} bytes, not ${rec.size}`;
  }
  if (missing > 0) {
    throw new BackupError(
      `store ${store}: ${missing} of the ${packs} packs the catalog names were not copied whole (${first})`,
    );
  }
  return packs;
}
