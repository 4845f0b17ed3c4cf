/**
 * A consistent backup of a Tessera while it serves: the catalog first, as one snapshot, then
 * the objects of its filesystem stores. Why that order is enough (docs/format.md): a pack is
 * durable before the commit that names it, so every pack the snapshot names exists when the
 * snapshot is taken, and packs are never modified, so a copy taken later is the same pack. What
 * could break it is a collection deleting such a pack before it is copied; the backup holds a
 * lease from before the snapshot to the end, and the GC rule deletes nothing trashed after a
 * live lease began. (A PostgreSQL catalog's collections are also held off whole, by taking its
 * cluster-wide "gc" lock: less churn while the stores are read.) After the copy, the packs the
 * snapshot names are checked present with their sizes (pack-check.ts) before the manifest,
 * the mark of a finished backup, is written.
 */
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Catalog } from "../catalog/catalog.js";
import { LmdbCatalog } from "../catalog/lmdb/lmdb-catalog.js";
import { dumpDatabase, schemaVersionOf } from "../catalog/pg/dump.js";
import { PgCatalog } from "../catalog/pg/pg-catalog.js";
import type { ServerConfig } from "../config/server-config.js";
import { DEFAULT_LEASE_MS, withLease } from "../engine/lease.js";
import type { StoreFormat } from "../engine/store-format.js";
import { FsBackend } from "../store/fs-backend.js";
import { openBackend } from "../store/open-store.js";
import {
  BACKUP_FORMAT,
  BACKUP_LMDB_DIR,
  BACKUP_PG_DUMP,
  type BackupCatalog,
  BackupError,
  type BackupManifest,
  type BackupStore,
  backupStoreDir,
  writeManifest,
} from "./backup-manifest.js";
import { type CopiedObjects, copyObjects } from "./object-copy.js";
import { checkPacks } from "./pack-check.js";

export interface BackupOptions {
  /** Called as each step begins, and awaited: where a test makes things happen between them. */
  onStep?: (step: "catalog" | "stores" | "check") => unknown;
  onProgress?: (step: string, done: number, total: number) => void;
  /**
   * Take no lease. Unsafe: it exists so that a test can show the lease is what keeps a
   * collection from deleting, mid-backup, packs the snapshot names.
   */
  unsafeNoLease?: boolean;
}

/** Throws BackupError unless `dir` is missing or an empty directory. */
export async function requireEmptyDir(dir: string, what: string): Promise<void> {
  const entries = await readdir(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return [];
    throw e;
  });
  if (entries.length > 0) throw new BackupError(`${what} ${dir} is not empty`);
}

/** The configured catalog, opened beside whatever serves it. */
function openLive(cfg: ServerConfig): Promise<Catalog> {
  if (cfg.catalog.type === "postgres") return PgCatalog.open({ ...cfg.catalog, asIs: true });
  return Promise.resolve(new LmdbCatalog(join(cfg.dataDir, "catalog")));
}

/** The snapshot of the catalog into `dir`, as the manifest describes it. */
async function snapshot(cfg: ServerConfig, live: Catalog, dir: string): Promise<BackupCatalog> {
  if (cfg.catalog.type === "postgres") {
    await dumpDatabase(cfg.catalog.url, join(dir, BACKUP_PG_DUMP));
    return { kind: "postgres", path: BACKUP_PG_DUMP, schema: await schemaVersionOf(cfg.catalog.url) };
  }
  const lmdb = live as LmdbCatalog;
  await lmdb.snapshotTo(join(dir, BACKUP_LMDB_DIR));
  const copy = new LmdbCatalog(join(dir, BACKUP_LMDB_DIR), { reserve: false });
  try {
    return { kind: "lmdb", path: BACKUP_LMDB_DIR, layout: await copy.getMeta<number>("layout") };
  } finally {
    await copy.close();
  }
}

/** Copies each filesystem store into the backup; remote stores are listed, not copied. */
async function copyStores(
  cfg: ServerConfig,
  dir: string,
  tell: NonNullable<BackupOptions["onProgress"]>,
): Promise<{ stores: BackupStore[]; copied: Map<string, CopiedObjects> }> {
  const stores: BackupStore[] = [];
  const copied = new Map<string, CopiedObjects>();
  for (const [name, store] of Object.entries(cfg.stores)) {
    if (store.type !== "filesystem") {
      stores.push({ name, type: store.type, copied: false });
      continue;
    }
    const from = await openBackend(store, cfg.dataDir, false, { name });
    const to = new FsBackend(join(dir, backupStoreDir(name)));
    try {
      const c = await copyObjects(from, to, (done, total) => tell(`store ${name}`, done, total));
      copied.set(name, c);
      const path = backupStoreDir(name);
      stores.push({ name, type: "filesystem", copied: true, path, objects: c.objects.size, bytes: c.bytes });
    } finally {
      await from.close();
      await to.close();
    }
  }
  return { stores, copied };
}

/**
 * The packs an LMDB snapshot names, checked against what was copied. A dump is checked when
 * it is restored (restore.ts): reading one back needs a database.
 */
async function checkSnapshot(dir: string, stores: BackupStore[], copied: Map<string, CopiedObjects>) {
  const copy = new LmdbCatalog(join(dir, BACKUP_LMDB_DIR), { reserve: false });
  try {
    for (const s of stores) {
      const c = copied.get(s.name);
      if (c) s.packsChecked = await checkPacks(copy, s.name, c.objects);
    }
  } finally {
    await copy.close();
  }
}

/** Backs up the configured Tessera into `dir` (missing or empty); the manifest written. */
export async function backup(cfg: ServerConfig, dir: string, o: BackupOptions = {}): Promise<BackupManifest> {
  await requireEmptyDir(dir, "the backup directory");
  await mkdir(dir, { recursive: true });
  const step = o.onStep ?? (() => {});
  const tell = o.onProgress ?? (() => {});
  const live = await openLive(cfg);
  try {
    const held = (fn: () => Promise<BackupManifest>) =>
      o.unsafeNoLease ? fn() : withLease(live, "backup", DEFAULT_LEASE_MS, () => fn());
    return await held(() =>
      live.exclusively("gc", async () => {
        await step("catalog");
        const snapshotAt = new Date().toISOString();
        const storeFormat = await live.getMeta<StoreFormat>("format");
        const catalog = await snapshot(cfg, live, dir);
        await step("stores");
        const { stores, copied } = await copyStores(cfg, dir, tell);
        await step("check");
        if (catalog.kind === "lmdb") await checkSnapshot(dir, stores, copied);
        const manifest: BackupManifest = {
          backupFormat: BACKUP_FORMAT,
          snapshotAt,
          finishedAt: new Date().toISOString(),
          catalog,
          storeFormat,
          stores,
          gcHeldBy: "lease",
        };
        await writeManifest(dir, manifest);
        return manifest;
      }),
    );
  } finally {
    await live.close();
  }
}
