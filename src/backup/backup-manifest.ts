/**
 * A backup's manifest (`tessera-backup.json`): what was copied, when, in which formats, from
 * which kind of catalog. It is written last, so a directory without one is a backup that did
 * not finish; restore reads it first and refuses what it cannot restore.
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { StoreFormat } from "../engine/store-format.js";
import { TesseraError } from "../errors.js";

export const BACKUP_MANIFEST = "tessera-backup.json";

/** The layout of a backup directory; a restore refuses a newer one. */
export const BACKUP_FORMAT = 1;

/** Where a backup keeps each part, relative to its directory. */
export const BACKUP_LMDB_DIR = "catalog";
export const BACKUP_PG_DUMP = "catalog.pgdump";
export const backupStoreDir = (name: string) => join("stores", name);

export type BackupCatalog =
  /** An LMDB copy of the environment (mdb_env_copy2); `layout` its meta "layout". */
  | { kind: "lmdb"; path: typeof BACKUP_LMDB_DIR; layout: number | undefined }
  /** A pg_dump (custom format); `schema` the tessera_schema version dumped. */
  | { kind: "postgres"; path: typeof BACKUP_PG_DUMP; schema: number | undefined };

export interface BackupStore {
  name: string;
  type: "filesystem" | "s3" | "swift";
  /**
   * Whether its objects are in the backup (filesystem stores). A remote store's are not: its
   * bucket's own versioning or replication keeps them (docs/operations.md).
   */
  copied: boolean;
  /** Of a copied store: where in the backup, how many objects and bytes. */
  path?: string;
  objects?: number;
  bytes?: number;
  /** Packs the catalog's copy names in this store, each checked present with its size. */
  packsChecked?: number;
}

export interface BackupManifest {
  backupFormat: number;
  /** When the catalog's snapshot was taken (its state is the backup's), and when it all ended. */
  snapshotAt: string;
  finishedAt: string;
  catalog: BackupCatalog;
  /** The store format record in the catalog (docs/format.md): chunker, pack and manifest versions. */
  storeFormat: StoreFormat | undefined;
  stores: BackupStore[];
  /**
   * How collections were kept from deleting what the catalog's copy names before the stores
   * were copied: a lease, held from before the snapshot to the end (docs/format.md, the GC rule).
   */
  gcHeldBy: "lease";
}

/** A backup that cannot be restored here, or a directory that is not one. */
export class BackupError extends TesseraError {
  constructor(message: string) {
    super("backup", message);
  }
}

export async function writeManifest(dir: string, m: BackupManifest): Promise<void> {
  const tmp = join(dir, `.${BACKUP_MANIFEST}.tmp`);
  await writeFile(tmp, `${JSON.stringify(m, null, 2)}\n`, { flush: true });
  await rename(tmp, join(dir, BACKUP_MANIFEST));
}

export async function readManifest(dir: string): Promise<BackupManifest> {
  let text: string;
  try {
    text = await readFile(join(dir, BACKUP_MANIFEST), "utf8");
  } catch {
    throw new BackupError(`${dir} has no ${BACKUP_MANIFEST}: not a finished Tessera backup`);
  }
  const m = JSON.parse(text) as BackupManifest;
  if (typeof m.backupFormat !== "number" || m.backupFormat > BACKUP_FORMAT) {
    throw new BackupError(
      `${dir} is a backup of format ${m.backupFormat}, newer than this Tessera's ${BACKUP_FORMAT}: restore it with a newer Tessera`,
    );
  }
  return m;
}
