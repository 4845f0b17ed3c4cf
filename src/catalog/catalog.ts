/**
 * The catalog's contract: what the engine and the image service may ask of it, whatever
 * database keeps it (LMDB here, in catalog/lmdb/; a shared SQL database for several nodes).
 * Every method is async, so a remote database fits behind it; the conformance suite in
 * test/catalog/catalog-conformance.ts holds every implementation to these comments.
 *
 * What it keeps:
 * - per store S, the chunk index (where each chunk of S sits in S's packs, and how many
 *   manifests held in S list it), the packs, the trash (objects GC will delete) and the
 *   condemned chunks (unreferenced, out of the index, still in their packs);
 * - manifests and their object records (the same whichever stores hold them; `stores` counts
 *   the holders in each);
 * - the image service's records: images with their sort indexes and owners' usage, members,
 *   tasks (types in image-records.ts, member-records.ts, task-records.ts), and the metadata
 *   definitions: namespaces, each whole in one record, and resource types (metadef-records.ts);
 * - leases: the writes in progress, in every process, that GC must not delete from under.
 *
 * All of it but the leases can be copied whole into another catalog (`tessera catalog migrate`)
 * through the optional CatalogCopy interface of catalog-copy.ts.
 *
 * Consistency: a unit of work (`transact`) is atomic and serializable against every other unit
 * of work, in any process; what it writes is visible to readers all at once after it resolves,
 * and not at all if it throws. A read outside a unit of work sees a committed state that
 * includes every unit of work that resolved before the read began (in any process), and never
 * a unit of work's writes before it commits. GC relies on this: a revival its scans miss is
 * one that resolved after it took `countedAt`.
 *
 * The GC rule (docs/format.md): GC condemns unreferenced chunks and trashes packs and orphaned
 * objects, each stamped with the catalog's sequence number; it deletes a trashed object only once
 * no live lease began before that stamp. A write takes its lease before it looks anything up, so
 * whatever it found or wrote outlives it; its commit revives a condemned chunk it relies on, and
 * fails (ChunkVanishedError, LeaseLostError) rather than reference anything gone.
 */
import type { ChunkLocation } from "../store/pack-writer.js";
import type { ImageRecord, ImageSortKey, IndexValue, OwnerUsage } from "./image-records.js";
import type { Member } from "./member-records.js";
import type { MetadefNamespaceRecord, MetadefResourceTypeRecord } from "./metadef-records.js";
import type { ChunkRecord, PackRecord, TrashEntry } from "./store-index.js";
import type { TaskRecord } from "./task-records.js";

export type { ChunkRecord, PackRecord, TrashEntry } from "./store-index.js";

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

/** All holders of an object, over every store. */
export function holders(obj: ObjectRecord): number {
  let n = 0;
  for (const k in obj.stores) n += obj.stores[k] as number;
  return n;
}

/** What a commit adds to a store: the chunks written there and the packs they went into. */
export interface StoreWrite {
  /** The lease the write held while it wrote; the commit fails if it has lapsed. */
  lease: number;
  /** Chunks written, by hex id. */
  written: Map<string, ChunkLocation>;
  packs: { id: Buffer; size: number; chunks: number }[];
  /**
   * Runs inside the commit's unit of work after the object is recorded (the image service
   * flips its image to active here, so the image and its data become visible together).
   * Throwing aborts the whole commit.
   */
  alsoInTransaction?: (tx: CatalogTx) => Promise<void>;
}

/** What one ingest commits. */
export interface IngestCommit extends StoreWrite {
  manifestId: Buffer;
  manifest: Buffer;
  object: Omit<ObjectRecord, "stores" | "createdAt">;
}

/**
 * A chunk's move inside one store's index (repack, fsck repair): applied only if the chunk is
 * still where it was (`from`; absent: still not indexed), so a move never undoes a commit or a
 * drop that happened meanwhile.
 */
export interface ChunkMove {
  id: Buffer;
  from?: { pack: Buffer; offset: number };
  /** The new place. Absent: only report whether the chunk is still at `from`. */
  to?: ChunkLocation;
  /** References of a chunk not indexed before (fsck: the manifests that list it). */
  refs?: number;
}

/** A write in progress, as recorded for every process to see. */
export interface LeaseRecord {
  id: number;
  /**
   * Who holds it: host, process id, what it is doing, and the node (a data directory on a
   * host) whose process took it, when the catalog was opened for one.
   */
  holder: { host: string; pid: number; what: string; node?: string };
  /** The catalog's sequence number when it began: anything stamped later is newer than it. */
  seq: number;
  since: number;
  /** Ms since the epoch past which it is dead unless renewed before. */
  until: number;
}

/** One store's chunk index, packs and trash, for reading. */
export interface ChunkIndex {
  readonly store: string;
  /**
   * Ids worth asking about in one lookup when a caller can wait to gather them: 1 where a
   * lookup costs no round trip (LMDB), more where each costs one (a remote database).
   */
  readonly batchHint?: number;
  /**
   * One answer per id, in order: where the chunk sits, or undefined when it is not indexed
   * (never stored here, dropped, or condemned by GC). One call answers a whole batch, as one
   * round trip to a remote database.
   */
  lookup(ids: readonly Uint8Array[]): Promise<(ChunkRecord | undefined)[]>;
  /** lookup's answer as booleans, without decoding records: the ingest's dedup check. */
  contains(ids: readonly Uint8Array[]): Promise<boolean[]>;
  /** Every indexed chunk, in id order; commits made during the scan may or may not show. */
  scanChunks(): AsyncIterable<{ id: Buffer; rec: ChunkRecord }>;
  scanPacks(): AsyncIterable<{ id: Buffer; rec: PackRecord }>;
  hasPack(id: Buffer): Promise<boolean>;
  scanTrash(): AsyncIterable<{ name: string; entry: TrashEntry }>;
  inTrash(name: string): Promise<boolean>;
  /**
   * Whether the catalog needs object `name` on this store's backend: a pack it records, a
   * manifest whose object this store holds (anything else, e.g. the store's format record, is
   * not GC's to take: true).
   */
  wants(name: string): Promise<boolean>;
}

/** The image service's records, for reading. */
export interface RecordsReader {
  getImage(id: string): Promise<ImageRecord | undefined>;
  /** One answer per id, in order (undefined for an unknown one): a page of records in one call. */
  getImages(ids: readonly string[]): Promise<(ImageRecord | undefined)[]>;
  /**
   * Image ids in the order of one sort index, starting at `from` (every id with that value
   * included) and walking in `dir`, lazily: a page reads only as far as it needs.
   */
  scanImages(
    key: ImageSortKey,
    dir: "asc" | "desc",
    from?: IndexValue,
  ): AsyncIterable<{ value: IndexValue; id: string }>;
  /** What an owner has (quota tallies), kept with every image write. */
  ownerUsage(owner: string | null): Promise<OwnerUsage>;
  getMember(imageId: string, project: string): Promise<Member | undefined>;
  /** An image's members, by project id. */
  listMembers(imageId: string): Promise<Member[]>;
  countMembers(imageId: string): Promise<number>;
  getTask(id: string): Promise<TaskRecord | undefined>;
  /** Every task, newest first. */
  listTasks(): Promise<TaskRecord[]>;
  /** An image's tasks, newest first. */
  tasksOfImage(imageId: string): Promise<TaskRecord[]>;
  /** A metadata definitions namespace by its name (exact: names are case-sensitive). */
  getNamespace(name: string): Promise<MetadefNamespaceRecord | undefined>;
  /** Every namespace, by name in byte order; each property map in the order it was written. */
  listNamespaces(): Promise<MetadefNamespaceRecord[]>;
  /** Every metadefs resource type, by name in byte order. */
  listResourceTypes(): Promise<MetadefResourceTypeRecord[]>;
}

/** The image service's records, inside a unit of work. */
export interface RecordsWriter extends RecordsReader {
  /** Writes a record, moving its sort index entries and its owner's usage from `prev`'s. */
  putImage(rec: ImageRecord, prev?: ImageRecord): Promise<void>;
  /** Removes a record, its index entries, its usage and its members. */
  removeImage(rec: ImageRecord): Promise<void>;
  putMember(m: Member): Promise<void>;
  removeMember(imageId: string, project: string): Promise<void>;
  putTask(t: TaskRecord): Promise<void>;
  removeTask(t: TaskRecord): Promise<void>;
  /** Writes a namespace under its name, replacing one of that name (a rename removes the old). */
  putNamespace(ns: MetadefNamespaceRecord): Promise<void>;
  removeNamespace(name: string): Promise<void>;
  putResourceType(rt: MetadefResourceTypeRecord): Promise<void>;
  removeResourceType(name: string): Promise<void>;
}

/**
 * A unit of work. Its methods may be called only until the function given to `transact`
 * settles, and it must await nothing but them: an implementation may hold a lock meanwhile.
 */
export interface CatalogTx extends RecordsWriter {
  getObject(id: Buffer): Promise<ObjectRecord | undefined>;
  getManifest(id: Buffer): Promise<Buffer | undefined>;
  getMeta<T>(key: string): Promise<T | undefined>;
  setMeta(key: string, value: unknown): Promise<void>;

  /**
   * The commit point of an ingest into `store`: records the manifest and object if new (else
   * merges digests the earlier upload lacked), then holds it in `store` (see commitCopy).
   * Returns whether the object was new.
   */
  commitIngest(store: string, c: IngestCommit): Promise<{ created: boolean }>;
  /**
   * The commit point of a copy of a known object into `store`: records its packs, and gives
   * the object a holder there. The first holder in a store adds a reference there to every
   * distinct chunk of the manifest: an indexed chunk, a chunk this write wrote, or a condemned
   * one (revived, its pack taken back out of the trash). A chunk none of these is gone, and the
   * whole unit of work fails with ChunkVanishedError; a lapsed lease fails it with
   * LeaseLostError.
   */
  commitCopy(store: string, manifestId: Buffer, c: StoreWrite): Promise<void>;
  /**
   * Drops one holder of an object in `store`. With the store's last, each of its chunks there
   * loses the manifest's reference (a chunk at zero stays indexed until GC condemns it); with
   * the last holder anywhere, the manifest and object go. Returns whether they went.
   */
  releaseObject(store: string, manifestId: Buffer): Promise<{ removed: boolean }>;
  /** Marks an object damaged (fsck --repair found a chunk of it bad everywhere). */
  markDamaged(manifestId: Buffer): Promise<void>;

  /** Records packs written to `store` (repack, repair). */
  recordPacks(store: string, packs: readonly { id: Buffer; size: number; chunks: number }[]): Promise<void>;
  /** Applies each move that still holds (ChunkMove); answers, per move, whether it held. */
  relocate(store: string, lease: number, moves: readonly ChunkMove[]): Promise<boolean[]>;
  /**
   * GC: each of `ids` still indexed with no reference leaves the index for the condemned list,
   * stamped with a new sequence number. Returns how many, their stored bytes, and the stamp.
   */
  condemn(store: string, ids: readonly Buffer[]): Promise<{ condemned: number; bytes: number }>;
  /**
   * GC: packs of `store` it found without a live chunk leave the pack records for the trash,
   * stamped with a new sequence number; `at` is when (ms), for the grace period. A pack a
   * commit revived a chunk in after sequence number `countedAt` (when the collection counted
   * what is live) stays. Returns how many went.
   */
  trashPacks(
    store: string,
    packs: readonly { name: string; size: number }[],
    at: number,
    countedAt: number,
  ): Promise<number>;
  /**
   * GC: objects found on the store's backend that the catalog does not know go to the trash,
   * stamped likewise, except any a commit has recorded since they were listed. Returns how many.
   */
  trashOrphans(
    store: string,
    objects: readonly { name: string; size: number }[],
    at: number,
  ): Promise<number>;
  /** GC: an object wanted again leaves the trash. */
  untrash(store: string, name: string): Promise<void>;
  /**
   * GC, just before deleting `name` from the store's backend: if it is still in the trash, not
   * wanted again (a pack recorded, a manifest whose object the store holds: then it just leaves
   * the trash) and no lease alive at `now` began before it was trashed, it leaves the trash with the condemned
   * chunks it holds (nothing can revive them any more) and the answer is its entry; otherwise
   * undefined, and it must not be deleted. `graceMs`: the entry read here (it may have been
   * trashed again since the collection looked) must also have waited that long. `ignoreLeases`
   * (unsafe; for the test that shows the rule matters) skips the lease check.
   */
  claimForDeletion(
    store: string,
    name: string,
    now: number,
    options?: { graceMs?: number; ignoreLeases?: boolean },
  ): Promise<TrashEntry | undefined>;
  /** Whether a lease alive at `now` began before sequence number `seq`. */
  leasesBefore(seq: number, now: number): Promise<boolean>;
  /** The next sequence number (every stamp and lease takes one). */
  nextSeq(): Promise<number>;

  /**
   * rebuild-index: replaces `store`'s chunk index and packs with what its packs hold, restores
   * the manifests it carries that the catalog lacks (their objects held once there, marked
   * restored), adopts restored objects it also carries, and recounts every reference there.
   */
  rebuildStore(store: string, input: RebuildInput): Promise<RebuildCounts>;
  /**
   * rebuild-index, once image records are restored: sets a restored object's holders in each
   * store of `holders` where it is held already to that count (at least 1). A store it is not
   * held in, a count below 1, or an object not marked restored is left as it is, so no
   * reference changes; the object stays marked restored (a later store's rebuild still adopts
   * it). Returns whether the object changed.
   */
  setRestoredHolders(manifestId: Buffer, holders: Record<string, number>): Promise<boolean>;
  /**
   * The sequence number becomes at least `seq` (what nextSeq returns next is above it): the
   * numbers stamped on a store's objects by a catalog since lost stay in the past.
   */
  raiseSeq(seq: number): Promise<void>;
}

export interface RebuildInput {
  packs: {
    id: Buffer;
    rec: PackRecord;
    entries: { id: Buffer; offset: number; length: number; flags: number; sum?: bigint }[];
  }[];
  /** Manifests found in the store that the catalog lacked, with their records. */
  missing: { id: Buffer; bytes: Buffer; hashes: Record<string, string> }[];
  /** Restored objects (by an earlier rebuild, from another store) this store carries too. */
  adopted: Buffer[];
}

export interface RebuildCounts {
  packs: number;
  chunks: number;
  manifests: number;
  manifestsRestored: number;
}

export interface Catalog {
  getObject(id: Buffer): Promise<ObjectRecord | undefined>;
  getManifest(id: Buffer): Promise<Buffer | undefined>;
  /** Every object record, by manifest id. */
  scanObjects(): AsyncIterable<{ id: Buffer; obj: ObjectRecord }>;
  /** What each store holds by the object records: objects, holders, their logical bytes. */
  holdingsByStore(): Promise<Map<string, StoreHoldings>>;
  getMeta<T>(key: string): Promise<T | undefined>;
  /** The chunk index of store `name` (created on first use). */
  chunkIndex(name: string): ChunkIndex;
  readonly records: RecordsReader;

  /**
   * Runs `fn` as one unit of work (see CatalogTx), retried whole where the implementation
   * must (so `fn` may run more than once, and must keep no state of its own across runs).
   * A commit refused for lack of space is CatalogUnwritableError. `useReserve`: the unit
   * frees space (a delete, a collection) or puts things back after a failure, and may use
   * space kept back for that on a full disk.
   */
  transact<T>(fn: (tx: CatalogTx) => Promise<T>, options?: { useReserve?: boolean }): Promise<T>;

  /** Begins a lease for `ttlMs` (a write about to start); `what` says what for. */
  beginLease(what: string, ttlMs: number): Promise<LeaseRecord>;
  /**
   * Extends a live lease to `ttlMs` from now. False when it has lapsed or ended: a lapsed
   * lease never lives again, and its write must fail.
   */
  renewLease(id: number, ttlMs: number): Promise<boolean>;
  endLease(id: number): Promise<void>;
  /** Leases alive now (their holders' processes may have died: see until). */
  liveLeases(): Promise<LeaseRecord[]>;
  /**
   * Runs `fn` holding the lock `name`, waiting for it first: one holder at a time among every
   * process of every node using this catalog (garbage collection runs under "gc"). A holder
   * that dies lets go. Not a safety device: the GC rule holds without it; it keeps nodes from
   * doing the same long work at once.
   */
  exclusively<T>(name: string, fn: () => Promise<T>): Promise<T>;

  /** Brings an older layout up to date (once); `store` is the name for unnamed old data. */
  upgradeLayout(store: string): Promise<void>;
  close(): Promise<void>;
}
