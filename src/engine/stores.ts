/**
 * The engine's stores: each a named object backend with its own chunk index in the catalog
 * and its own settings (pack size, compression, read-ahead), since a local disk and an S3
 * bucket want different ones.
 */
import type { Catalog, ChunkIndex, ChunkRecord } from "../catalog/catalog.js";
import type { ObjectBackend } from "../store/backend.js";
import { BufferPool } from "../store/buffer-pool.js";
import type { ReadCheck, StoreConfig } from "../store/open-store.js";
import type { StoreFormat } from "./store-format.js";

/** What a store is opened from. Settings left out take the engine's. */
export interface StoreSetup {
  backend: ObjectBackend;
  packSize?: number;
  compression?: "zstd" | "none";
  readAheadBytes?: number;
  /** What reads check of each chunk (default "fast"). */
  readCheck?: ReadCheck;
  /** The configuration it came from, if any (for the stores' detail listing). */
  config?: StoreConfig;
}

export interface Store {
  name: string;
  backend: ObjectBackend;
  /** This store's chunk and pack index. */
  index: ChunkIndex;
  packSize: number;
  /** Whether new chunks written here are compressed (when they shrink). */
  compression: boolean;
  readAheadBytes: number;
  /** What reads check of each chunk: "off" everywhere when the engine's verifyOnRead is off. */
  readCheck: ReadCheck;
  /** Idle pack buffers of packSize bytes, for ingests and copies into this store. */
  packBuffers: BufferPool;
  config?: StoreConfig;
}

export interface StoreDefaults {
  defaultStore?: string;
  readOrder?: string[];
  packSize: number;
  compression: "zstd" | "none";
  readAheadBytes: number;
  /** False turns every store's read check off. */
  verifyOnRead: boolean;
}

/** The stores in read order, and the default one; RangeError for settings that cannot work. */
export function openStores(
  catalog: Catalog,
  setups: Record<string, StoreSetup>,
  format: StoreFormat,
  d: StoreDefaults,
): { list: Store[]; defaultStore: Store } {
  const names = Object.keys(setups);
  const defaultName = d.defaultStore ?? names[0];
  if (defaultName === undefined || !setups[defaultName]) {
    throw new RangeError(`the default store ${JSON.stringify(defaultName)} is not one of the stores`);
  }
  for (const n of d.readOrder ?? []) {
    if (!setups[n]) throw new RangeError(`the read order names ${JSON.stringify(n)}, which is not a store`);
  }
  const order = [...new Set([...(d.readOrder ?? [defaultName]), ...names])];
  const list = order.map((name): Store => {
    const s = setups[name] as StoreSetup;
    const packSize = s.packSize ?? d.packSize;
    if (packSize < 1024 * 1024 || packSize > 1024 * 1024 * 1024) {
      throw new RangeError("packSize must be between 1 MiB and 1 GiB");
    }
    if (packSize < 2 * format.chunker.max) {
      throw new RangeError("packSize must hold at least two chunks of the maximum size");
    }
    return {
      name,
      backend: s.backend,
      index: catalog.chunkIndex(name),
      packSize,
      compression: (s.compression ?? d.compression) === "zstd",
      readAheadBytes: s.readAheadBytes ?? d.readAheadBytes,
      readCheck: d.verifyOnRead ? (s.readCheck ?? "fast") : "off",
      // Enough idle buffers for one ingest's open pack plus the ones being written.
      packBuffers: new BufferPool(packSize, 3),
      config: s.config,
    };
  });
  return { list, defaultStore: list.find((s) => s.name === defaultName) as Store };
}

/** What an operator may see of a store: never its credentials. */
export interface StoreDescription {
  name: string;
  description?: string;
  isDefault: boolean;
  type: "filesystem" | "s3" | "swift";
  /** Where its objects are: a directory, an S3 endpoint, bucket and prefix, or a Swift container. */
  location: Record<string, string | number | boolean>;
  compression: boolean;
  packSize: number;
}

export function describeStore(s: Store, isDefault: boolean): StoreDescription {
  const cfg = s.config;
  const location: Record<string, string | number | boolean> = {};
  if (cfg?.type === "filesystem" && cfg.path) location.path = cfg.path;
  if (cfg?.type === "s3") {
    for (const k of ["endpoint", "region", "bucket", "prefix", "forcePathStyle"] as const) {
      const v = cfg[k];
      if (v !== undefined) location[k] = v;
    }
  }
  if (cfg?.type === "swift") {
    for (const k of ["authUrl", "storageUrl", "container", "prefix", "region"] as const) {
      const v = cfg[k];
      if (v !== undefined) location[k] = v;
    }
  }
  return {
    name: s.name,
    ...(cfg?.description !== undefined ? { description: cfg.description } : {}),
    isDefault,
    type: cfg?.type ?? "filesystem",
    location,
    compression: s.compression,
    packSize: s.packSize,
  };
}

/**
 * Where to read each chunk of `ids` from: the first of `stores` (in read order) holding it for
 * someone, else the first holding it at all (a copy released there, indexed until garbage
 * collection), skipping `except`; undefined when none has it. One batched lookup per store.
 */
export async function locateChunks(
  stores: Iterable<Store>,
  ids: readonly Uint8Array[],
  except?: Store,
): Promise<({ store: Store; rec: ChunkRecord } | undefined)[]> {
  const found: ({ store: Store; rec: ChunkRecord } | undefined)[] = new Array(ids.length).fill(undefined);
  let open = ids.map((_, i) => i);
  for (const store of stores) {
    if (store === except || open.length === 0) continue;
    const recs = await store.index.lookup(open.map((i) => ids[i] as Uint8Array));
    const still: number[] = [];
    open.forEach((i, k) => {
      const rec = recs[k];
      if (rec && !(found[i] && rec.refs === 0)) found[i] = { store, rec };
      if (!(found[i] && (found[i]?.rec.refs ?? 0) > 0)) still.push(i);
    });
    open = still;
  }
  return found;
}
