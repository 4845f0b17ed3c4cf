/**
 * The catalog: an LMDB environment with one database per kind of record.
 *
 *   meta       string → JSON          the store format this catalog was built for, its layout
 *   chunks@S   chunk id (32 B) → 32 B  pack id (16) | offset u32 | length u32 | flags u32 | refs u32
 *   packs@S    pack id (16 B) → JSON   { size, chunks, createdAt }
 *   manifests  manifest id → bytes     the binary manifest (see manifest.ts)
 *   objects    manifest id → JSON      { size, chunkCount, hashes, stores, createdAt }
 *   images     image id → record       the image records of the API (see image-records.ts)
 *   image_by_K [value, image id] → ""  one sort index per sortable image attribute K
 *   members    [image id, project] → JSON  an image's members and their status (member-records.ts)
 *   usage      owner → JSON           each owner's images, bytes and uploads (quota tallies)
 *   tasks      task id → JSON         import tasks (task-records.ts), and task_by_image [image, task]
 *
 * Chunks and packs are per store S (store-index.ts): each store holds its own copy of the
 * chunks its objects need. Manifests and objects are not: an object is the same whichever
 * stores hold it, and its record says which (`stores`: holders by store name).
 *
 * Reference counts: a chunk's `refs` in store S is the number of manifests present in S that
 * list it (once per manifest, however often it repeats); an object's holders in S are the
 * ingests and copies into S not yet released. Everything a commit writes is one write
 * transaction, so a reader sees all of it or none of it. Reads are synchronous (LMDB reads are
 * memory-mapped).
 */
import { type Database, open, type RootDatabase } from "lmdb";
import { CatalogUnwritableError, ChunkVanishedError } from "../errors.js";
import type { ChunkLocation } from "../store/pack-writer.js";
import {
  IMAGE_SORT_KEYS,
  type ImageRecord,
  type ImageSortKey,
  type OwnerUsage,
  tallyAll,
} from "./image-records.js";
import { catalogWriteError, dropLmdbCommitEchoes } from "./lmdb-errors.js";
import { decodeManifest, distinctChunkIds } from "./manifest.js";
import type { MemberRecord } from "./member-records.js";
import { SpaceReserve } from "./space-reserve.js";
import {
  decodeChunkRecord,
  encodeChunkRecord,
  type PackRecord,
  StoreIndex,
  type TrashEntry,
} from "./store-index.js";
import type { TaskRecord } from "./task-records.js";

export { type ChunkRecord, decodeChunkRecord, encodeChunkRecord, type PackRecord } from "./store-index.js";

export interface ObjectRecord {
  size: number;
  chunkCount: number;
  hashes: Record<string, string>;
  /** Holders by store name; a store is listed while it holds the object's chunks for someone. */
  stores: Record<string, number>;
  createdAt: string;
  /** Restored by rebuild-index from a store's manifests, its holders a guess (one per store). */
  restored?: true;
  /** A chunk of it is bad in every store that had it (fsck --repair found): it is not served. */
  damaged?: true;
}

export interface StoreHoldings {
  objects: number;
  holders: number;
  /** Each holder's object size, summed. */
  logicalBytes: number;
}

/** What a commit adds to a store: the chunks written there and the packs they went into. */
export interface StoreWrite {
  /** Chunks written, by hex id. */
  written: Map<string, ChunkLocation>;
  packs: { id: Buffer; size: number; chunks: number }[];
  /**
   * Runs inside the commit's transaction after the object is recorded (the image service
   * flips its image to active here, so the image and its data become visible together).
   * Throwing aborts the whole commit.
   */
  alsoInTransaction?: () => void;
}

/** What one ingest commits. */
export interface IngestCommit extends StoreWrite {
  manifestId: Buffer;
  manifest: Buffer;
  object: Omit<ObjectRecord, "stores" | "createdAt">;
}

/**
 * Version of the catalog's layout (upgradeLayout): 2 since stores are named, 3 since owners'
 * usage is tallied.
 */
const LAYOUT = 3;

/** The record without the `restored` mark: holders changed on purpose are no guess any more. */
function settled(obj: ObjectRecord): ObjectRecord {
  const { restored: _, ...rest } = obj;
  return rest;
}

/** All holders of an object, over every store. */
export function holders(obj: ObjectRecord): number {
  let n = 0;
  for (const k in obj.stores) n += obj.stores[k] as number;
  return n;
}

export class Catalog {
  private constructor(
    private readonly root: RootDatabase,
    private readonly reserve: SpaceReserve,
    readonly meta: Database<unknown, string>,
    readonly manifests: Database<Buffer, Buffer>,
    readonly objects: Database<ObjectRecord, Buffer>,
    readonly images: Database<ImageRecord, string>,
    readonly imageIndexes: Record<ImageSortKey, Database<Buffer, (string | number | boolean)[]>>,
    readonly members: Database<MemberRecord, [string, string]>,
    readonly usage: Database<OwnerUsage, string>,
    readonly tasks: Database<TaskRecord, string>,
    readonly taskByImage: Database<string, [string, string]>,
  ) {}

  /** Opens (creating if needed) the catalog in directory `path`. */
  static open(path: string, options: { durable?: boolean } = {}): Catalog {
    dropLmdbCommitEchoes();
    const root = open({ path, maxDbs: 256, noSync: options.durable === false });
    const reserve = new SpaceReserve(path);
    const bin = { keyEncoding: "binary", encoding: "binary" } as const;
    const indexes = {} as Record<ImageSortKey, Database<Buffer, (string | number | boolean)[]>>;
    for (const k of IMAGE_SORT_KEYS) indexes[k] = root.openDB({ name: `image_by_${k}`, encoding: "binary" });
    return new Catalog(
      root,
      reserve,
      root.openDB({ name: "meta", encoding: "json" }),
      root.openDB<Buffer, Buffer>({ name: "manifests", ...bin }),
      root.openDB<ObjectRecord, Buffer>({ name: "objects", keyEncoding: "binary", encoding: "json" }),
      root.openDB<ImageRecord, string>({ name: "images", encoding: "msgpack" }),
      indexes,
      root.openDB<MemberRecord, [string, string]>({ name: "members", encoding: "json" }),
      root.openDB<OwnerUsage, string>({ name: "usage", encoding: "json" }),
      root.openDB<TaskRecord, string>({ name: "tasks", encoding: "json" }),
      root.openDB<string, [string, string]>({ name: "task_by_image", encoding: "json" }),
    );
  }

  private readonly storeIndexes = new Map<string, StoreIndex>();

  /** The chunk and pack index of the store named `name` (opened, or created, on first use). */
  store(name: string): StoreIndex {
    let s = this.storeIndexes.get(name);
    if (!s) {
      s = new StoreIndex(
        name,
        this.root.openDB<Buffer, Buffer>({
          name: `chunks@${name}`,
          keyEncoding: "binary",
          encoding: "binary",
        }),
        this.root.openDB<PackRecord, Buffer>({
          name: `packs@${name}`,
          keyEncoding: "binary",
          encoding: "json",
        }),
        this.root.openDB<TrashEntry, string>({ name: `trash@${name}`, encoding: "json" }),
      );
      this.storeIndexes.set(name, s);
    }
    return s;
  }

  getManifest(id: Buffer): Buffer | undefined {
    return this.manifests.get(id);
  }

  getObject(id: Buffer): ObjectRecord | undefined {
    return this.objects.get(id);
  }

  /**
   * The commit point of an ingest into store `store`: in one transaction, record the manifest
   * and object if they are new, then add a holder in that store (holdInStore). Resolves when
   * the transaction is durable; returns whether the manifest was new.
   */
  async commitIngest(store: string, c: IngestCommit): Promise<{ created: boolean }> {
    const now = new Date().toISOString();
    return this.run(() => {
      const existing = this.objects.get(c.manifestId);
      if (existing) {
        // A second upload may carry digests the first did not compute.
        this.objects.putSync(c.manifestId, {
          ...existing,
          hashes: { ...c.object.hashes, ...existing.hashes },
        });
      } else {
        this.manifests.putSync(c.manifestId, c.manifest);
        this.objects.putSync(c.manifestId, { ...c.object, stores: {}, createdAt: now });
      }
      this.holdInStore(store, c.manifestId, c);
      c.alsoInTransaction?.();
      return { created: !existing };
    });
  }

  /**
   * The commit point of a copy of a known object into store `store`: its chunks written there
   * are indexed and it gains a holder there (holdInStore).
   */
  async commitCopy(store: string, manifestId: Buffer, c: StoreWrite): Promise<void> {
    await this.run(() => {
      this.holdInStore(store, manifestId, c);
      c.alsoInTransaction?.();
    });
  }

  /**
   * Inside a transaction: records the packs and chunk locations written to `store`, and adds a
   * holder of the object there. The first holder in a store adds a reference in that store to
   * every distinct chunk the manifest lists; a chunk neither indexed in the store nor written
   * by this commit was collected meanwhile, and the whole transaction aborts with
   * ChunkVanishedError.
   */
  private holdInStore(store: string, manifestId: Buffer, c: StoreWrite): void {
    const idx = this.store(store);
    const obj = this.objects.get(manifestId);
    const manifest = this.manifests.get(manifestId);
    if (!obj || !manifest) throw new ChunkVanishedError(`manifest ${manifestId.toString("hex")}`);
    idx.recordPacks(c.packs);
    const held = obj.stores[store] ?? 0;
    // Held there already: the chunks are referenced, and whatever this commit wrote
    // duplicates indexed ones (garbage for GC).
    if (held === 0) {
      for (const [hex, id] of distinctChunkIds(decodeManifest(manifest))) {
        const cur = idx.chunks.get(id);
        if (cur) {
          const rec = decodeChunkRecord(cur);
          rec.refs++;
          idx.chunks.putSync(id, encodeChunkRecord(rec));
          continue;
        }
        const loc = c.written.get(hex);
        if (!loc) throw new ChunkVanishedError(hex);
        idx.chunks.putSync(id, encodeChunkRecord({ ...loc, refs: 1 }));
      }
    }
    this.objects.putSync(manifestId, { ...settled(obj), stores: { ...obj.stores, [store]: held + 1 } });
  }

  /**
   * Drops one holder of an object in `store`. When the store's last goes, each chunk there
   * loses the manifest's reference (chunks reaching zero stay indexed, and stored, until
   * garbage collection); when no store holds it any more, the manifest and object are removed.
   * Returns whether the manifest was removed.
   */
  async releaseObject(store: string, manifestId: Buffer): Promise<{ removed: boolean }> {
    return this.run(() => this.releaseObjectInTransaction(store, manifestId), true);
  }

  /** releaseObject's body, for callers that release as part of a larger transaction. */
  releaseObjectInTransaction(store: string, manifestId: Buffer): { removed: boolean } {
    const obj = this.objects.get(manifestId);
    const held = obj?.stores[store] ?? 0;
    if (!obj || held === 0) return { removed: false };
    const stores = { ...obj.stores, [store]: held - 1 };
    if (held === 1) {
      delete stores[store];
      const manifest = this.manifests.get(manifestId);
      const idx = this.store(store);
      if (manifest) {
        for (const id of distinctChunkIds(decodeManifest(manifest)).values()) {
          const cur = idx.chunks.get(id);
          if (!cur) continue;
          const rec = decodeChunkRecord(cur);
          rec.refs = Math.max(0, rec.refs - 1);
          idx.chunks.putSync(id, encodeChunkRecord(rec));
        }
      }
    }
    if (Object.keys(stores).length > 0) {
      this.objects.putSync(manifestId, { ...settled(obj), stores });
      return { removed: false };
    }
    this.manifests.removeSync(manifestId);
    this.objects.removeSync(manifestId);
    return { removed: true };
  }

  /** What each store holds by the object records: objects, holders, their logical bytes. */
  holdingsByStore(): Map<string, StoreHoldings> {
    const out = new Map<string, StoreHoldings>();
    for (const { value } of this.objects.getRange()) {
      for (const [name, n] of Object.entries(value.stores)) {
        const h = out.get(name) ?? { objects: 0, holders: 0, logicalBytes: 0 };
        h.objects++;
        h.holders += n;
        h.logicalBytes += n * value.size;
        out.set(name, h);
      }
    }
    return out;
  }

  /**
   * Catalogs written before stores had names kept one chunk and pack index, plain holder
   * counts and no image stores: all of it becomes store `name`'s. Once, in one transaction.
   */
  async upgradeLayout(name: string): Promise<void> {
    const layout = this.meta.get("layout");
    if (layout === LAYOUT) return;
    if (this.meta.get("format") === undefined) {
      await this.meta.put("layout", LAYOUT); // a new catalog
      return;
    }
    if (layout === 2) {
      await this.run(() => {
        tallyAll(this);
        this.meta.putSync("layout", LAYOUT);
      });
      return;
    }
    const bin = { keyEncoding: "binary", encoding: "binary" } as const;
    const oldChunks = this.root.openDB<Buffer, Buffer>({ name: "chunks", ...bin });
    const oldPacks = this.root.openDB<PackRecord, Buffer>({
      name: "packs",
      keyEncoding: "binary",
      encoding: "json",
    });
    const idx = this.store(name);
    await this.run(() => {
      for (const { key, value } of oldChunks.getRange()) idx.chunks.putSync(key, value);
      for (const { key, value } of oldPacks.getRange()) idx.packs.putSync(key, value);
      oldChunks.clearSync();
      oldPacks.clearSync();
      for (const { key, value } of [...this.objects.getRange()]) {
        const { refs, ...rest } = value as ObjectRecord & { refs?: number };
        if (refs !== undefined)
          this.objects.putSync(key, { ...rest, stores: refs > 0 ? { [name]: refs } : {} });
      }
      for (const { key, value } of [...this.images.getRange()]) {
        if (!value.stores) this.images.putSync(key, { ...value, stores: value.object ? [name] : [] });
      }
      tallyAll(this);
      this.meta.putSync("layout", LAYOUT);
    });
  }

  async close(): Promise<void> {
    await this.root.close();
  }

  /**
   * Runs `fn` in one write transaction; a commit refused for lack of space is a
   * CatalogUnwritableError. `useReserve`: the transaction frees space (a delete, a collection)
   * or puts things back after a failure (an upload or import that failed, recovery at start),
   * and may use the space reserve on a full disk: those must work when nothing else can.
   */
  transaction<T>(fn: () => T, options: { useReserve?: boolean } = {}): Promise<T> {
    return this.run(fn, options.useReserve);
  }

  private async run<T>(fn: () => T, useReserve = false): Promise<T> {
    try {
      const result = await this.root.transaction(fn);
      this.reserve.retake();
      return result;
    } catch (e) {
      const err = await catalogWriteError(e);
      // The disk is full: the reserve makes room for this commit (a delete, most likely).
      if (useReserve && err instanceof CatalogUnwritableError && this.reserve.release()) {
        try {
          return await this.root.transaction(fn);
        } catch (again) {
          throw await catalogWriteError(again);
        }
      }
      throw err;
    }
  }
}
