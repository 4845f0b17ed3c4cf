/**
 * A whole catalog copied into another, then checked (`tessera catalog migrate`): the source
 * exported (catalog-copy.ts) straight into the target's import, nothing held in between but a
 * batch, and the copy compared with its source (copy-check.ts). Whichever implementations the
 * two are: the command moves LMDB to PostgreSQL and back.
 */
import { TesseraError } from "../errors.js";
import type { Catalog } from "./catalog.js";
import {
  CatalogNotEmptyError,
  canCopy,
  ITEM_KINDS,
  type KindCounts,
  refuseLiveLeases,
} from "./catalog-copy.js";
import { type CheckReport, checkCopy, type OnProgress } from "./copy-check.js";

export interface MigrateReport {
  copied: KindCounts;
  check: CheckReport;
}

/**
 * Copies `source` into `target` and checks the copy; `names` say which is which in messages.
 * Refuses a target that is not empty and a source with live leases before writing anything.
 */
export async function migrateCatalog(
  source: Catalog,
  target: Catalog,
  names: { source: string; target: string },
  onProgress?: OnProgress,
): Promise<MigrateReport> {
  if (!canCopy(source) || !canCopy(target)) {
    throw new TesseraError("catalog_copy", "this catalog implementation cannot be copied whole");
  }
  if (!(await target.isEmpty())) throw new CatalogNotEmptyError(names.target);
  await refuseLiveLeases(source);
  const before = await source.countAll();
  const total = ITEM_KINDS.reduce((n, k) => n + before[k], 0);
  onProgress?.("copy", 0, total);
  const copied = await target.importAll(source.exportAll(), (done) => onProgress?.("copy", done, total));
  const check = await checkCopy(source, target, copied, onProgress);
  return { copied, check };
}
