/**
 * Opening the data directory for a command. Opening an engine creates whatever is missing
 * (catalog, store, format record), which is right for `serve` and `ingest` but turns a
 * mistyped --data, or a command run from the wrong directory, into a fresh empty store and a
 * report of zeros. Commands that read a store therefore check first that there is one.
 */
import { stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type Composed, compose, type Parts } from "../compose.js";
import type { ServerConfig } from "../config/server-config.js";
import { TesseraError } from "../errors.js";
import { STORE_FORMAT_OBJECT } from "../store/names.js";
import { openBackend } from "../store/open-store.js";

/** The catalog's LMDB file: present in every data directory an engine has opened. */
const CATALOG_FILE = join("catalog", "data.mdb");

export class NoDataDirError extends TesseraError {
  constructor(dataDir: string, why: string) {
    super(
      "no_data_dir",
      `no Tessera data directory at ${resolve(dataDir)} (${why}): pass --data or --config`,
    );
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return false;
    throw e;
  }
}

/** Whether store `name` carries a format record, i.e. was written by an engine (read-only probe). */
async function storeHasFormat(cfg: ServerConfig, name: string): Promise<boolean> {
  const store = cfg.stores[name];
  if (!store) return false;
  const backend = await openBackend(store, cfg.dataDir, false, { name });
  try {
    return (await backend.stat(STORE_FORMAT_OBJECT)) !== undefined;
  } finally {
    await backend.close();
  }
}

/**
 * Throws NoDataDirError unless the configured directory holds a catalog, creating nothing.
 * With `orStore`, that store's format record is enough: rebuild-index is how a lost catalog
 * is made again from the store alone.
 */
export async function requireDataDir(cfg: ServerConfig, orStore?: string): Promise<void> {
  // A shared catalog is not in the directory: opening it (compose) says whether it is there.
  if (cfg.catalog.type !== "lmdb") return;
  if (await exists(join(cfg.dataDir, CATALOG_FILE))) return;
  if (orStore === undefined) throw new NoDataDirError(cfg.dataDir, "no catalog");
  if (await storeHasFormat(cfg, orStore)) return;
  throw new NoDataDirError(cfg.dataDir, `no catalog, and store ${orStore} has no format record`);
}

/**
 * Runs `fn` on `parts` of the configured directory (compose.ts), then closes them and calls
 * `unlock`, even when opening failed: the release of the directory lock the caller took, or
 * NO_LOCK.
 */
export async function withService<P extends Parts, T>(
  cfg: ServerConfig,
  parts: P,
  unlock: () => Promise<void>,
  fn: (service: Composed<P>) => Promise<T>,
): Promise<T> {
  try {
    const service = await compose(cfg, parts);
    try {
      return await fn(service);
    } finally {
      await service.close();
    }
  } finally {
    await unlock();
  }
}

/**
 * The release of no lock, for commands that may run beside a server: those that only read, and
 * ingest, whose new objects the trash's grace period protects from the server's collections.
 */
export const NO_LOCK = async () => {};
