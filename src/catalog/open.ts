/**
 * Opens the catalog a configuration names. One kind for now: LMDB in a directory (the embedded
 * default); a shared database for several nodes joins here.
 */
import type { Catalog } from "./catalog.js";
import { LmdbCatalog } from "./lmdb/lmdb-catalog.js";

export function openCatalog(path: string, options: { durable?: boolean } = {}): Catalog {
  return new LmdbCatalog(path, options);
}
