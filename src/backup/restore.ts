/**
 * A backup restored into an empty target: the configured data directory (an LMDB catalog) or
 * database (PostgreSQL, bare), and each copied store into the configured store of its name,
 * which must be empty. Objects first, the catalog last; then the restored catalog forgets the
 * leases of the writes that were in flight when it was copied (they will never commit here),
 * and every pack it names is checked present in each restored store with its size.
 *
 * A remote store (S3, Swift) was not copied: the restored catalog points into it as it is,
 * and whatever a collection deleted there since the backup is missing unless the bucket kept
 * it (docs/operations.md): `tessera fsck` says.
 */
import { copyFile, mkdir, open } from "node:fs/promises";
import { join } from "node:path";
import type { Catalog } from "../catalog/catalog.js";
import { LmdbCatalog } from "../catalog/lmdb/lmdb-catalog.js";
import { databaseIsBare, dropRestoredLeases, restoreDatabase } from "../catalog/pg/dump.js";
import { PgCatalog } from "../catalog/pg/pg-catalog.js";
import { RECORDS_TO_RENUMBER } from "../catalog/record-changes.js";
import type { ServerConfig } from "../config/server-config.js";
import { lockDir } from "../engine/dir-lock.js";
import type { ObjectBackend } from "../store/backend.js";
import { FsBackend } from "../store/fs-backend.js";
import { openBackend } from "../store/open-store.js";
import { requireEmptyDir } from "./backup.js";
import { BackupError, type BackupManifest, backupStoreDir, readManifest } from "./backup-manifest.js";
import { type CopiedObjects, copyObjects } from "./object-copy.js";
import { checkPacks } from "./pack-check.js";

export interface RestoreReport {
  from: string;
  snapshotAt: string;
  catalog: BackupManifest["catalog"]["kind"];
  stores: { name: string; restored: boolean; objects?: number; bytes?: number; packsChecked?: number }[];
  /** Leases of writes in flight at the snapshot, dropped. */
  leasesDropped: number;
}

/** Refuses a backup the configuration cannot take, and a target that is not empty. */
async function checkTarget(m: BackupManifest, cfg: ServerConfig, targets: Map<string, ObjectBackend>) {
  if (m.catalog.kind !== cfg.catalog.type) {
    throw new BackupError(
      `the backup holds a ${m.catalog.kind} catalog and the configuration names a ${cfg.catalog.type} one: ` +
        "restore into the same kind, then move it with tessera catalog migrate",
    );
  }
  for (const s of m.stores) {
    if (!cfg.stores[s.name]) {
      throw new BackupError(`the backup has store ${s.name}, which the configuration does not name`);
    }
  }
  if (cfg.catalog.type === "postgres" && !(await databaseIsBare(cfg.catalog.url))) {
    throw new BackupError("the configured catalog database is not empty: restore into a new database");
  }
  for (const [name, backend] of targets) {
    for await (const _ of backend.list("")) throw new BackupError(`store ${name} is not empty`);
  }
}

/** The restored catalog's live leases ended: for LMDB through the interface, for PostgreSQL in SQL. */
async function dropLeases(cfg: ServerConfig, dataDir: string): Promise<number> {
  if (cfg.catalog.type === "postgres") return dropRestoredLeases(cfg.catalog.url);
  const catalog = new LmdbCatalog(join(dataDir, "catalog"));
  try {
    const live = await catalog.liveLeases();
    for (const l of live) await catalog.endLease(l.id);
    return live.length;
  } finally {
    await catalog.close();
  }
}

function openRestored(cfg: ServerConfig): Promise<Catalog> {
  if (cfg.catalog.type === "postgres") return PgCatalog.open({ ...cfg.catalog, asIs: true });
  return Promise.resolve(new LmdbCatalog(join(cfg.dataDir, "catalog")));
}

async function copyDurably(from: string, to: string): Promise<void> {
  await copyFile(from, to);
  const fh = await open(to, "r+");
  await fh.sync().finally(() => fh.close());
}

/** Restores the backup in `from` into the configured (empty) data directory, catalog and stores. */
export async function restore(
  from: string,
  cfg: ServerConfig,
  tell: (step: string, done: number, total: number) => void = () => {},
): Promise<RestoreReport> {
  const m = await readManifest(from);
  await requireEmptyDir(cfg.dataDir, "the data directory");
  await mkdir(cfg.dataDir, { recursive: true });
  // No server may start on the directory while it is half restored.
  const unlock = await lockDir(cfg.dataDir);
  const targets = new Map<string, ObjectBackend>();
  try {
    for (const s of m.stores) {
      const store = cfg.stores[s.name];
      if (s.copied && store)
        targets.set(s.name, await openBackend(store, cfg.dataDir, true, { name: s.name }));
    }
    await checkTarget(m, cfg, targets);
    const copied = new Map<string, CopiedObjects>();
    for (const [name, to] of targets) {
      const src = new FsBackend(join(from, backupStoreDir(name)));
      try {
        copied.set(name, await copyObjects(src, to, (done, total) => tell(`store ${name}`, done, total)));
      } finally {
        await src.close();
      }
    }
    if (m.catalog.kind === "lmdb") {
      await mkdir(join(cfg.dataDir, "catalog"));
      await copyDurably(join(from, m.catalog.path, "data.mdb"), join(cfg.dataDir, "catalog", "data.mdb"));
    } else if (cfg.catalog.type === "postgres") {
      await restoreDatabase(cfg.catalog.url, join(from, m.catalog.path));
    }
    const leasesDropped = await dropLeases(cfg, cfg.dataDir);
    const report: RestoreReport = {
      from,
      snapshotAt: m.snapshotAt,
      catalog: m.catalog.kind,
      stores: [],
      leasesDropped,
    };
    const catalog = await openRestored(cfg);
    try {
      await catalog.transact((tx) => tx.setMeta(RECORDS_TO_RENUMBER, true));
      for (const s of m.stores) {
        const c = copied.get(s.name);
        if (!c) {
          report.stores.push({ name: s.name, restored: false });
          continue;
        }
        const packsChecked = await checkPacks(catalog, s.name, c.objects);
        report.stores.push({
          name: s.name,
          restored: true,
          objects: c.objects.size,
          bytes: c.bytes,
          packsChecked,
        });
      }
    } finally {
      await catalog.close();
    }
    return report;
  } finally {
    for (const b of targets.values()) await b.close();
    await unlock();
  }
}
