/**
 * The engine: a library that ingests byte streams into the content-addressed stores and reads
 * them back, knowing nothing of the API above it. `Engine.open` wires a catalog and one or more named
 * object stores together and checks that every store's format matches this process's.
 */

import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { ChunkCache } from "../cache/chunk-cache.js";
import type { Catalog } from "../catalog/catalog.js";
import { type CatalogConfig, openCatalog } from "../catalog/open.js";
import { type WatchedCatalog, watchImageChanges } from "../catalog/record-changes.js";
import type { ChunkerParams } from "../chunker/params.js";
import { MissingStoreError, NotFoundError, UnknownStoreError } from "../errors.js";
import { ChunkVerifier } from "../hash/chunk-verifier.js";
import { HasherPool } from "../hash/whole-image-hasher.js";
import type { ObjectBackend } from "../store/backend.js";
import { BufferPool } from "../store/buffer-pool.js";
import { ChunkCodec } from "../store/chunk-codec.js";
import {
  filesystemStorePath,
  openBackend,
  type StoreConfig,
  storeEngineDefaults,
} from "../store/open-store.js";
import { PackWriter } from "../store/pack-writer.js";
import { type CopyOptions, type CopyResult, copyObject } from "./copy.js";
import { type FsckOptions, type FsckReport, fsck } from "./fsck.js";
import { collectGarbage, type GcOptions, type GcReport } from "./gc.js";
import { type IngestOptions, type IngestResult, ingest } from "./ingest.js";
import { DEFAULT_LEASE_MS, withLease } from "./lease.js";
import { DEFAULT_LOCATION_CACHE_ENTRIES, LocationCache } from "./location-cache.js";
import { ManifestCache } from "./manifest-cache.js";
import { type ReadOptions, type ReadPiece, readObject, readPieces } from "./read.js";
import { ReadBudget } from "./read-budget.js";
import { type RebuildResult, rebuildIndex } from "./rebuild-index.js";
import { RecordObjects } from "./record-objects.js";
import { allStats, type ObjectStats, objectStats, type StatsReport } from "./stats.js";
import { FormatRaise, type StoreFormat, settleFormat } from "./store-format.js";
import { openStores, type Store, type StoreSetup } from "./stores.js";

export type { Store, StoreSetup } from "./stores.js";

export interface EngineOptions {
  /** The catalog: LMDB in the catalog directory (the default), or a shared PostgreSQL. */
  catalog?: CatalogConfig;
  /** The node this process belongs to, named on the leases it takes (catalog/open.ts). */
  node?: string;
  /** Chunker parameters. Omitted: the store's own (or the defaults for a new store). */
  chunker?: ChunkerParams;
  /**
   * Whole-stream digests to compute on ingest (the image service asks for md5 and its
   * chosen secure hash), as Node crypto names. Default md5 and sha512.
   */
  hashAlgorithms?: string[];
  /**
   * Target pack size in bytes (default 16 MiB; docs/benchmarks.md has the measurement). This
   * and compression and readAheadBytes apply to every store that does not set its own.
   */
  packSize?: number;
  /**
   * Check every chunk on read as its store says (default true: each store's readCheck, by
   * default its fast checksum, BLAKE3 on remote stores); false checks nothing anywhere.
   */
  verifyOnRead?: boolean;
  /** Bytes of pack reads kept in flight ahead of the consumer on read (default 8 MiB). */
  readAheadBytes?: number;
  /** Largest single ranged read of a pack on read (default 4 MiB). */
  readSegmentBytes?: number;
  /**
   * Read-ahead memory all reads in progress share (default 256 MiB): past budget / readAheadBytes
   * reads at once, each keeps less ahead, in smaller reads (read-budget.ts).
   */
  readBudgetBytes?: number;
  /**
   * Compress new chunks with zstd before they go into packs ("zstd", the default) or store them
   * as they are ("none"). Either way a store reads both kinds: the choice is per chunk.
   */
  compression?: "zstd" | "none";
  /** The store ingests go to unless told otherwise (default: the first). */
  defaultStore?: string;
  /**
   * The stores reads try, in order, for each chunk (default: the default store, then the
   * others in the order given). Stores left out are tried last.
   */
  readOrder?: string[];
  /**
   * How long a write's lease lives unless renewed (default 5 minutes, renewed every quarter of
   * it): a write stalled longer than this fails at its commit (docs/format.md, the GC rule).
   */
  leaseMs?: number;
  /**
   * The node-local cache that reads from remote stores go through (src/cache); the caller
   * opens and closes it. Absent: no cache.
   */
  chunkCache?: ChunkCache;
  /**
   * Chunk locations a node remembers where its catalog's lookups cost a round trip
   * (location-cache.ts; default 65,536); 0 remembers none. Unused on a local catalog.
   */
  locationCacheEntries?: number;
}

/** The name of the one store of an engine opened on a bare backend. */
export const DEFAULT_STORE_NAME = "local";

export const DEFAULT_PACK_SIZE = 16 * 1024 * 1024;

const HELD_SLAB_BYTES = 4 * 1024 * 1024;

export class Engine {
  readonly hashers: HasherPool;
  readonly hashAlgorithms: string[];
  readonly verifyOnRead: boolean;
  /** Bytes one read keeps in flight: the most any of its stores asks for. */
  readonly readAheadBytes: number;
  readonly readSegmentBytes: number;
  readonly readBudget: ReadBudget;
  readonly readBuffers: BufferPool;
  /** Slabs for ingest's copies of chunks waiting for a lookup (held-chunks.ts). */
  readonly heldChunkSlabs: BufferPool;
  readonly verifier = new ChunkVerifier();
  readonly codec = new ChunkCodec();
  readonly manifests = new ManifestCache();
  /** Raises stores of an older pack version before their first new pack (store-format.ts). */
  readonly formatRaise: FormatRaise;
  /** The stores by name, in read order (the order reads try them for each chunk). */
  readonly stores: ReadonlyMap<string, Store>;
  readonly defaultStore: Store;
  readonly chunkCache: ChunkCache | undefined;
  /** Where this node last found chunks, if lookups cost a round trip (location-cache.ts). */
  readonly locations: LocationCache | undefined;
  /** Named records a layer above keeps on the stores beside their packs (record-objects.ts). */
  readonly recordObjects = new RecordObjects((name) => this.store(name));

  private constructor(
    readonly catalog: WatchedCatalog,
    stores: Store[],
    defaultStore: Store,
    readonly format: StoreFormat,
    options: EngineOptions,
  ) {
    this.stores = new Map(stores.map((s) => [s.name, s]));
    this.defaultStore = defaultStore;
    this.formatRaise = new FormatRaise(catalog, format);
    this.hashAlgorithms = options.hashAlgorithms ?? ["md5", "sha512"];
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.chunkCache = options.chunkCache;
    const remembered = options.locationCacheEntries ?? DEFAULT_LOCATION_CACHE_ENTRIES;
    const roundTrips = stores.some((s) => (s.index.batchHint ?? 1) > 1);
    this.locations = roundTrips && remembered > 0 ? new LocationCache(remembered) : undefined;
    this.hashers = new HasherPool(this.hashAlgorithms);
    this.verifyOnRead = options.verifyOnRead ?? true;
    this.readAheadBytes = Math.max(...stores.map((s) => s.readAheadBytes));
    this.readSegmentBytes = options.readSegmentBytes ?? 4 * 1024 * 1024;
    this.readBudget = new ReadBudget(
      options.readBudgetBytes ?? 256 * 1024 * 1024,
      this.readAheadBytes,
      this.readSegmentBytes,
    );
    // A download's read-ahead plus the pieces its socket still holds.
    // Plain (not WebAssembly) memory: it is transferred to the verifier workers and back.
    this.readBuffers = new BufferPool(
      this.readSegmentBytes,
      Math.ceil(this.readAheadBytes / this.readSegmentBytes) + 4,
      (n) => Buffer.allocUnsafeSlow(n),
    );
    // Two batches of an ingest at a time (the one looked up, the one cut): a few slabs each.
    this.heldChunkSlabs = new BufferPool(Math.max(HELD_SLAB_BYTES, this.chunkerParams.max), 16, (n) =>
      Buffer.allocUnsafeSlow(n),
    );
  }

  /** The store named `name` (default: the default store), or UnknownStoreError. */
  store(name?: string): Store {
    if (name === undefined) return this.defaultStore;
    const s = this.stores.get(name);
    if (!s) throw new UnknownStoreError(name);
    return s;
  }

  get chunkerParams(): ChunkerParams {
    const { min, avg, max } = this.format.chunker;
    return { min, avg, max };
  }

  /**
   * Opens the catalog in `catalogDir` and the stores: one bare backend (a store named
   * "local") or several named ones. A new store records its format; an existing one must match
   * the catalog's and the requested chunker parameters.
   */
  static async open(
    catalogDir: string,
    stores: ObjectBackend | Record<string, StoreSetup>,
    options: EngineOptions = {},
  ): Promise<Engine> {
    const setups: Record<string, StoreSetup> = isBackend(stores)
      ? { [DEFAULT_STORE_NAME]: { backend: stores } }
      : stores;
    await mkdir(catalogDir, { recursive: true });
    const catalog = watchImageChanges(await openCatalog(catalogDir, options.catalog, { node: options.node }));
    try {
      let chunker = options.chunker;
      let format: StoreFormat | undefined;
      const older: ObjectBackend[] = [];
      for (const s of Object.values(setups)) {
        const settled = await settleFormat(catalog, s.backend, chunker);
        format = settled.format;
        chunker = format.chunker;
        if (settled.older) older.push(s.backend);
      }
      if (!format) throw new RangeError("an engine needs at least one store");
      const { list, defaultStore } = openStores(catalog, setups, format, {
        defaultStore: options.defaultStore,
        readOrder: options.readOrder,
        packSize: options.packSize ?? DEFAULT_PACK_SIZE,
        compression: options.compression ?? "none",
        readAheadBytes: options.readAheadBytes ?? 8 * 1024 * 1024,
        verifyOnRead: options.verifyOnRead ?? true,
      });
      await catalog.upgradeLayout(defaultStore.name);
      await assertStoresKnown(catalog, setups);
      const engine = new Engine(catalog, list, defaultStore, format, options);
      for (const b of older) engine.formatRaise.mark(b);
      return engine;
    } catch (e) {
      await catalog.close();
      throw e;
    }
  }

  /**
   * The stores of a data directory: the catalog in DIR/catalog, the objects on `stores` (the
   * embedded default: one filesystem store, "local", under DIR/objects). `store` is shorthand
   * for `stores: {local: store}`. The engine options given apply to every store over its own
   * configuration.
   */
  static async openDir(
    dataDir: string,
    options: EngineOptions & {
      durable?: boolean;
      store?: StoreConfig;
      stores?: Record<string, StoreConfig>;
    } = {},
  ): Promise<Engine> {
    const configs = options.stores ?? { [DEFAULT_STORE_NAME]: options.store ?? { type: "filesystem" } };
    const setups: Record<string, StoreSetup> = {};
    const { packSize, compression, readAheadBytes } = options;
    const overrides = Object.fromEntries(
      Object.entries({ packSize, compression, readAheadBytes }).filter(([, v]) => v !== undefined),
    );
    try {
      for (const [name, cfg] of Object.entries(configs)) {
        const backend = await openBackend(cfg, dataDir, options.durable ?? true, { name });
        // The config as opened: a filesystem store's path filled in, for the stores' listing.
        const config =
          cfg.type === "filesystem"
            ? { ...cfg, path: resolve(filesystemStorePath(cfg, dataDir, name)) }
            : cfg;
        setups[name] = { backend, config, ...storeEngineDefaults(cfg), ...overrides };
      }
      return await Engine.open(join(dataDir, "catalog"), setups, options);
    } catch (e) {
      for (const s of Object.values(setups)) await s.backend.close();
      throw e;
    }
  }

  /** Ingests a byte stream (into the default store unless options.store says); see ingest.ts. */
  ingest(source: AsyncIterable<Uint8Array>, options: IngestOptions = {}): Promise<IngestResult> {
    return this.writing(() => ingest(this, source, options));
  }

  /** Copies an object into store `to`, moving only the chunks it lacks; see copy.ts. */
  copy(manifestId: Buffer | string, to: string, options: CopyOptions = {}): Promise<CopyResult> {
    return this.writing(() => copyObject(this, toId(manifestId), this.store(to), options));
  }

  /** Collects garbage in every store (or one); see gc.ts. */
  gc(options: GcOptions = {}): Promise<GcReport> {
    return collectGarbage(this, options);
  }

  /** Checks every chunk and manifest of every store (or one), repairing if asked; see fsck.ts. */
  fsck(options: FsckOptions = {}): Promise<FsckReport> {
    return fsck(this, options);
  }

  /** Logical against physical bytes per store and in total; see stats.ts. */
  stats(): Promise<StatsReport> {
    return allStats(this);
  }

  /** What one object references alone and shares, in a store; see stats.ts. */
  objectStats(manifestId: Buffer | string, store?: string): Promise<ObjectStats> {
    return objectStats(this, toId(manifestId), store);
  }

  /**
   * Runs `fn` under a lease in the catalog (lease.ts): what it finds indexed or writes on a
   * backend outlives it, whichever process collects garbage.
   */
  leased<T>(what: string, fn: (lease: number) => Promise<T>): Promise<T> {
    return withLease(this.catalog, what, this.leaseMs, fn);
  }

  /** A write's lease's time to live (what is older than it is no write in progress). */
  readonly leaseMs: number;

  /** Runs a write (ingest, copy); an engine that none is using gives back its pack buffers. */
  private async writing<T>(fn: () => Promise<T>): Promise<T> {
    this.writesRunning++;
    try {
      return await fn();
    } finally {
      // An idle engine should not hold a few packs' worth of buffers per store.
      if (--this.writesRunning === 0) for (const s of this.stores.values()) s.packBuffers.clear();
    }
  }

  private writesRunning = 0;

  /** Streams an object's bytes (or a range of them); see read.ts. */
  read(manifestId: Buffer | string, options: ReadOptions = {}): AsyncGenerator<Buffer> {
    return readObject(this, toId(manifestId), options);
  }

  /**
   * Like read, but the pieces' buffers come from a pool: the caller releases each piece when
   * done with it (see ReadPiece). For servers streaming many large reads.
   */
  readPooled(manifestId: Buffer | string, options: ReadOptions = {}): AsyncGenerator<ReadPiece> {
    return readPieces(this, toId(manifestId), options, true);
  }

  /** The size and hashes recorded for an object. */
  async stat(manifestId: Buffer | string) {
    const rec = await this.catalog.getObject(toId(manifestId));
    if (!rec) throw new NotFoundError(`object ${String(manifestId)}`);
    return rec;
  }

  /**
   * Drops one holder of an object in a store (default: the default store); its chunks there
   * become collectable when none is left.
   */
  release(manifestId: Buffer | string, store?: string): Promise<{ removed: boolean }> {
    const name = this.store(store).name;
    return this.catalog.transact((tx) => tx.releaseObject(name, toId(manifestId)), { useReserve: true });
  }

  /** Rebuilds a store's chunk index (default store's) from its packs alone; see rebuild-index.ts. */
  rebuildIndex(store?: string): Promise<RebuildResult> {
    return rebuildIndex(this, this.store(store));
  }

  /** A writer of new packs into `store`, once its format records name this pack version. */
  async packWriter(store: Store): Promise<PackWriter> {
    await this.formatRaise.before(store.backend);
    return new PackWriter(store.backend, { packSize: store.packSize, buffers: store.packBuffers });
  }

  async close(): Promise<void> {
    await this.hashers.close();
    await this.verifier.close();
    await this.codec.close();
    await this.catalog.close();
    for (const s of this.stores.values()) await s.backend.close();
  }
}

/**
 * A store that holds objects must be configured: without it their data would be unreachable,
 * and a renamed store would look empty. Refused at open, before anything is served.
 */
async function assertStoresKnown(catalog: Catalog, setups: Record<string, StoreSetup>): Promise<void> {
  const missing = [...(await catalog.holdingsByStore())].filter(([name]) => !setups[name]);
  if (missing.length === 0) return;
  const list = missing.map(([name, h]) => `"${name}" (${h.objects} objects)`).join(", ");
  throw new MissingStoreError(
    `the catalog has data in stores the configuration does not list: ${list}; configure them ` +
      "again (stores cannot be renamed), or copy their images elsewhere and remove them from there first",
  );
}

function isBackend(x: ObjectBackend | Record<string, StoreSetup>): x is ObjectBackend {
  return typeof (x as ObjectBackend).put === "function";
}

export function toId(id: Buffer | string): Buffer {
  if (Buffer.isBuffer(id)) return id;
  if (!/^[0-9a-f]{64}$/.test(id)) throw new NotFoundError(`object ${JSON.stringify(id)}`);
  return Buffer.from(id, "hex");
}
