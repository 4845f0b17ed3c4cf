/**
 * Opening the data directory for a command. Opening an engine creates whatever is missing
 * (catalog, store, format record), which is right for `serve` and `ingest` but turns a
 * mistyped --data, or a command run from the wrong directory, into a fresh empty store and a
 * report of zeros. Commands that read a store therefore check first that there is one.
 */
import { stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Engine } from "../engine/engine.js";
import { TesseraError } from "../errors.js";
import { STORE_FORMAT_OBJECT } from "../store/names.js";
import { openBackend } from "../store/open-store.js";
import { chunkerOf, nodeHashName, type ServerConfig } from "./config.js";

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
  if (await exists(join(cfg.dataDir, CATALOG_FILE))) return;
  if (orStore === undefined) throw new NoDataDirError(cfg.dataDir, "no catalog");
  if (await storeHasFormat(cfg, orStore)) return;
  throw new NoDataDirError(cfg.dataDir, `no catalog, and store ${orStore} has no format record`);
}

/** The engine over the configuration's stores. */
export function openEngine(cfg: ServerConfig): Promise<Engine> {
  return Engine.openDir(cfg.dataDir, {
    stores: cfg.stores,
    defaultStore: cfg.defaultStore,
    readOrder: cfg.storeReadOrder.length > 0 ? cfg.storeReadOrder : undefined,
    durable: cfg.fsync,
    hashAlgorithms: ["md5", nodeHashName(cfg.osHashAlgo)],
    chunker: chunkerOf(cfg),
  });
}

/**
 * Runs `fn` on the engine of the configured directory, then closes it and calls `unlock` (the
 * release of the directory lock the caller took, or NO_LOCK for read-only work).
 */
export async function withEngine<T>(
  cfg: ServerConfig,
  unlock: () => Promise<void>,
  fn: (engine: Engine) => Promise<T>,
): Promise<T> {
  try {
    const engine = await openEngine(cfg);
    try {
      return await fn(engine);
    } finally {
      await engine.close();
    }
  } finally {
    await unlock();
  }
}

export const NO_LOCK = async () => {};
