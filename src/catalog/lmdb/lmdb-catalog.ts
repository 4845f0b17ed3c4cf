/**
 * The catalog in LMDB (the embedded default): one environment in a directory, its databases
 * in tables.ts.
 *
 * A unit of work is one LMDB child transaction inside a write transaction, so a throw rolls
 * back everything it wrote; LMDB's writer lock serializes units of work across processes.
 * The write transaction stays open while the unit's function runs (it awaits only this
 * catalog's already-settled promises), and lmdb-js would let this process's other reads see
 * its writes meanwhile: reads outside a unit of work therefore wait at a gate until no unit of
 * work is running, so they see committed data only.
 */
import { existsSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CatalogUnwritableError, CatalogVersionError } from "../../errors.js";
import type {
  Catalog,
  CatalogTx,
  ChunkIndex,
  LeaseRecord,
  ObjectRecord,
  RecordsReader,
  StoreHoldings,
} from "../catalog.js";
import { type CatalogCopy, type CatalogItem, type KindCounts, refuseLiveLeases } from "../catalog-copy.js";
import type { PackRecord } from "../store-index.js";
import { withGuardedTx } from "../unit-guard.js";
import { decodeChunkRecord } from "./chunk-record.js";
import { beginLease, liveLeases, renewLease } from "./leases.js";
import { exportLmdb, importLmdb, lmdbCounts, lmdbIsEmpty, lmdbStoreNames } from "./lmdb-copy.js";
import { catalogWriteError, dropLmdbCommitEchoes } from "./lmdb-errors.js";
import { recordsReader, unitOfWork } from "./lmdb-tx.js";
import { holdingsByStore } from "./objects.js";
import { tallyAll } from "./records.js";
import { SpaceReserve } from "./space-reserve.js";
import { getChunk, wanted } from "./store-ops.js";
import { openTables, type Tables } from "./tables.js";

/**
 * Version of the catalog's layout (upgradeLayout): 2 since stores are named, 3 since owners'
 * usage is tallied.
 */
const LAYOUT = 3;

/** Entries a scan hands out between pauses for the requests this process serves. */
const SCAN_STRIDE = 5000;

export class LmdbCatalog implements Catalog, CatalogCopy {
  private readonly tables: Tables;
  private readonly path: string;
  /** Absent for a catalog opened only to be read (a backup's copy: no 8 MiB file added to it). */
  private readonly reserve: SpaceReserve | undefined;
  private readonly tx: CatalogTx;
  readonly records: RecordsReader;
  /** Units of work running now, and who waits for them to end. */
  private running = 0;
  private waiting: (() => void)[] = [];
  private readonly indexes = new Map<string, ChunkIndex>();
  /** The last holder queued for each lock name (exclusively). */
  private readonly locks = new Map<string, Promise<unknown>>();

  /** The node whose leases this catalog takes (LeaseRecord.holder.node). */
  private readonly node: string | undefined;
  /**
   * Whether no store format was recorded when this catalog was opened: a new one, which the
   * engine's first open records a format in before it asks for the layout (upgradeLayout).
   */
  private readonly newAtOpen: boolean;

  /**
   * Opens (creating if needed) the catalog in directory `path`. `reserve: false` keeps no
   * space reserve: for a copy that is only read.
   */
  constructor(path: string, options: { durable?: boolean; node?: string; reserve?: boolean } = {}) {
    this.node = options.node;
    dropLmdbCommitEchoes();
    this.path = path;
    this.tables = openTables(path, options.durable !== false);
    const layout = this.tables.meta.get("layout");
    if (typeof layout === "number" && layout > LAYOUT) {
      void this.tables.root.close();
      // Read as one of ours, it would be "upgraded" as the oldest layout and ruined.
      throw new CatalogVersionError(
        `the catalog in ${path} has layout ${layout}, newer than this Tessera's ${LAYOUT}: it was written by a newer Tessera; upgrade Tessera`,
      );
    }
    this.newAtOpen = this.tables.meta.get("format") === undefined;
    this.reserve = options.reserve === false ? undefined : new SpaceReserve(path);
    this.tx = unitOfWork(this.tables);
    this.records = recordsReader(this.tables, this.gate);
  }

  /** Resolves once no unit of work is running (undefined when none is: no await needed). */
  private readonly gate = (): Promise<void> | undefined => {
    if (this.running === 0) return undefined;
    return new Promise<void>((resolve) => this.waiting.push(resolve)).then(() => this.gate());
  };

  async getObject(id: Buffer): Promise<ObjectRecord | undefined> {
    await this.gate();
    return this.tables.objects.get(id);
  }

  async getManifest(id: Buffer): Promise<Buffer | undefined> {
    await this.gate();
    return this.tables.manifests.get(id);
  }

  async *scanObjects(): AsyncIterable<{ id: Buffer; obj: ObjectRecord }> {
    yield* this.scan(this.tables.objects.getRange(), ({ key, value }) => ({
      id: Buffer.from(key),
      obj: value,
    }));
  }

  async holdingsByStore(): Promise<Map<string, StoreHoldings>> {
    await this.gate();
    return holdingsByStore(this.tables);
  }

  async getMeta<T>(key: string): Promise<T | undefined> {
    await this.gate();
    return this.tables.meta.get(key) as T | undefined;
  }

  chunkIndex(name: string): ChunkIndex {
    let idx = this.indexes.get(name);
    if (idx) return idx;
    // Resolved per call: a store first opened by a unit of work that rolled back is reopened.
    const s = () => this.tables.store(name);
    const cat = this;
    idx = {
      store: name,
      async lookup(ids) {
        await cat.gate();
        return ids.map((id) => getChunk(s(), id));
      },
      async contains(ids) {
        await cat.gate();
        const { chunks } = s();
        return ids.map((id) => chunks.doesExist(Buffer.from(id.buffer, id.byteOffset, id.byteLength)));
      },
      scanChunks: () =>
        this.scan(s().chunks.getRange(), ({ key, value }) => ({
          id: Buffer.from(key),
          rec: decodeChunkRecord(value),
        })),
      scanPacks: () =>
        this.scan(s().packs.getRange(), ({ key, value }) => ({
          id: Buffer.from(key),
          rec: value as PackRecord,
        })),
      async hasPack(id) {
        await cat.gate();
        return s().packs.doesExist(id);
      },
      scanTrash: () =>
        this.scan(s().trash.getRange(), ({ key, value }) => ({ name: key as string, entry: value })),
      async inTrash(name) {
        await cat.gate();
        return s().trash.doesExist(name);
      },
      async wants(objectName) {
        await cat.gate();
        return wanted(cat.tables, name, objectName);
      },
    };
    this.indexes.set(name, idx);
    return idx;
  }

  /**
   * A scan, mapped, with a pause every few thousand entries (a million-entry scan would
   * otherwise hold the event loop for a second) and the gate before each stride.
   */
  private async *scan<E, T>(entries: Iterable<E>, map: (e: E) => T): AsyncGenerator<T> {
    await this.gate();
    let n = 0;
    for (const e of entries) {
      yield map(e);
      if (++n % SCAN_STRIDE === 0) {
        await new Promise((r) => setImmediate(r));
        await this.gate();
      }
    }
  }

  transact<T>(fn: (tx: CatalogTx) => Promise<T>, options: { useReserve?: boolean } = {}): Promise<T> {
    const { root } = this.tables;
    const body = () =>
      root.transaction(() =>
        root.childTransaction(async () => {
          this.running++;
          try {
            return await withGuardedTx(this.tx, fn);
          } finally {
            if (--this.running === 0) for (const w of this.waiting.splice(0)) w();
          }
        }),
      ) as Promise<T>;
    const known = new Set(this.tables.storeNames());
    return this.run(body, options.useReserve === true).catch((e: unknown) => {
      this.tables.forgetStores(this.tables.storeNames().filter((n) => !known.has(n)));
      throw e;
    });
  }

  async beginLease(what: string, ttlMs: number): Promise<LeaseRecord> {
    return this.run(
      () => this.tables.root.transaction(() => beginLease(this.tables, what, ttlMs, this.node)),
      false,
    );
  }

  async renewLease(id: number, ttlMs: number): Promise<boolean> {
    return this.run(() => this.tables.root.transaction(() => renewLease(this.tables, id, ttlMs)), true);
  }

  async endLease(id: number): Promise<void> {
    await this.run(() => this.tables.root.transaction(() => this.tables.leases.removeSync(id)), true);
  }

  /**
   * One holder at a time within this process. An LMDB catalog is one node's, and of its
   * processes only the primary runs work under these locks (offline commands take the data
   * directory's lock first).
   */
  exclusively<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const before = this.locks.get(name) ?? Promise.resolve();
    const run = before.catch(() => {}).then(fn);
    const settled = run.catch(() => {});
    this.locks.set(name, settled);
    void settled.then(() => {
      if (this.locks.get(name) === settled) this.locks.delete(name);
    });
    return run;
  }

  async liveLeases(): Promise<LeaseRecord[]> {
    await this.gate();
    return liveLeases(this.tables, Date.now());
  }

  /**
   * Catalogs written before stores had names kept one chunk and pack index, plain holder
   * counts and no image stores: all of it becomes store `name`'s. Once, in one transaction.
   * Before an existing catalog is changed, a copy of it as it was is kept beside it
   * (`catalog-before-layout-N`, kept if already there): the way back to the older Tessera.
   */
  async upgradeLayout(name: string): Promise<void> {
    const t = this.tables;
    const layout = t.meta.get("layout");
    if (layout === LAYOUT) return;
    if (this.newAtOpen || t.meta.get("format") === undefined) {
      await t.meta.put("layout", LAYOUT); // a new catalog
      return;
    }
    await this.keepCopyBeforeUpgrade();
    if (layout === 2) {
      await this.run(
        () =>
          t.root.transaction(() => {
            tallyAll(t);
            t.meta.putSync("layout", LAYOUT);
          }),
        false,
      );
      return;
    }
    const bin = { keyEncoding: "binary", encoding: "binary" } as const;
    const oldChunks = t.root.openDB<Buffer, Buffer>({ name: "chunks", ...bin });
    const oldPacks = t.root.openDB<PackRecord, Buffer>({
      name: "packs",
      keyEncoding: "binary",
      encoding: "json",
    });
    const s = t.store(name);
    await this.run(
      () =>
        t.root.transaction(() => {
          for (const { key, value } of oldChunks.getRange()) s.chunks.putSync(key, value);
          for (const { key, value } of oldPacks.getRange()) s.packs.putSync(key, value);
          oldChunks.clearSync();
          oldPacks.clearSync();
          for (const { key, value } of [...t.objects.getRange()]) {
            const { refs, ...rest } = value as ObjectRecord & { refs?: number };
            if (refs !== undefined)
              t.objects.putSync(key, { ...rest, stores: refs > 0 ? { [name]: refs } : {} });
          }
          for (const { key, value } of [...t.images.getRange()]) {
            if (!value.stores) t.images.putSync(key, { ...value, stores: value.object ? [name] : [] });
          }
          tallyAll(t);
          t.meta.putSync("layout", LAYOUT);
        }),
      false,
    );
  }

  // ---- whole-catalog copies (../catalog-copy.ts, lmdb-copy.ts) ----

  async *exportAll(): AsyncIterable<CatalogItem> {
    await refuseLiveLeases(this);
    await this.gate();
    yield* exportLmdb(this.tables, LAYOUT);
  }

  async importAll(items: AsyncIterable<CatalogItem>, onItems?: (done: number) => void): Promise<KindCounts> {
    await this.gate();
    return importLmdb(this.tables, `in ${this.path}`, LAYOUT, items, onItems);
  }

  async countAll(): Promise<KindCounts> {
    await this.gate();
    return lmdbCounts(this.tables);
  }

  async storeNames(): Promise<string[]> {
    await this.gate();
    return lmdbStoreNames(this.tables);
  }

  async isEmpty(): Promise<boolean> {
    await this.gate();
    return lmdbIsEmpty(this.tables);
  }

  /**
   * Damage on purpose, as a lost or corrupted index would: for the tests and drills of
   * rebuild-index and fsck. Never used by the service.
   */
  readonly damage = {
    /** Forgets every chunk and pack of `store`, as if its index were lost. */
    loseIndex: async (store: string): Promise<void> => {
      const s = this.tables.store(store);
      await this.tables.root.transaction(() => {
        s.chunks.clearSync();
        s.packs.clearSync();
      });
    },
    /** Forgets where one chunk of `store` is. */
    dropChunk: async (store: string, id: Buffer): Promise<void> => {
      await this.tables.store(store).chunks.remove(id);
    },
  };

  /** The copy upgradeLayout keeps; an earlier attempt's stays (it is the older state). */
  private async keepCopyBeforeUpgrade(): Promise<void> {
    const dir = join(dirname(this.path), `${basename(this.path)}-before-layout-${LAYOUT}`);
    if (existsSync(join(dir, "data.mdb"))) return;
    const building = `${dir}-partial`;
    await rm(building, { recursive: true, force: true });
    await this.snapshotTo(building);
    await rename(building, dir);
  }

  /**
   * Copies the whole environment, as one committed state, into directory `dir` (LMDB's
   * mdb_env_copy2, compacted: free pages left out), while this and other processes go on
   * writing. `dir` must not hold a catalog.
   */
  async snapshotTo(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    await this.tables.root.backup(dir, true);
  }

  async close(): Promise<void> {
    await this.tables.root.close();
  }

  /**
   * Runs a write; a commit refused for lack of space is CatalogUnwritableError. With
   * `useReserve` the space reserve is given up for one more try (the write frees space, or
   * puts things back after a failure: those must work when nothing else can).
   */
  private async run<T>(write: () => Promise<T>, useReserve: boolean): Promise<T> {
    try {
      const result = await write();
      this.reserve?.retake();
      return result;
    } catch (e) {
      const err = await catalogWriteError(e);
      if (useReserve && err instanceof CatalogUnwritableError && this.reserve?.release()) {
        try {
          return await write();
        } catch (again) {
          throw await catalogWriteError(again);
        }
      }
      throw err;
    }
  }
}
