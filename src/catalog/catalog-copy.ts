/**
 * Whole-catalog copies (`tessera catalog migrate`): an optional interface beside Catalog, which
 * cannot list everything a catalog keeps (condemned chunks, meta keys, owners' tallies, the
 * trash, the names of the stores it indexes). Both implementations have it (lmdb/lmdb-copy.ts,
 * pg/pg-copy.ts); copy-check.ts proves a copy equal to its source.
 *
 * What is copied, as CatalogItems: every meta key (the store format, the layout, the sequence
 * number, so stamps taken after the move stay newer than those before it), per store the chunk
 * index (with references and sums), the packs, the trash and the condemned chunks; manifests
 * and object records; image records exactly as kept (their sort indexes are derived from them),
 * members, tasks and owners' usage tallies (copied, not recounted: a copy must not change them);
 * the metadata definitions' namespaces and resource types.
 *
 * Leases are not: a copy is made with every node stopped, and a live lease means a write is in
 * progress whose commit the copy would miss, so exportAll refuses while one lives. The sequence
 * number moves with the data, so a lease taken on the new catalog is newer than every stamp.
 *
 * Both ends stream: items go in key order, a page at a time, and importAll writes them in
 * batches, so neither side holds more than a few thousand records.
 */
import { TesseraError } from "../errors.js";
import type { Catalog, ChunkRecord, ObjectRecord, PackRecord, TrashEntry } from "./catalog.js";
import type { ImageRecord, OwnerUsage } from "./image-records.js";
import type { Member } from "./member-records.js";
import type { MetadefNamespaceRecord, MetadefResourceTypeRecord } from "./metadef-records.js";
import type { TaskRecord } from "./task-records.js";

/** A condemned chunk: out of the index by GC, still in its pack until that pack is deleted. */
export interface CondemnedRecord {
  pack: Buffer;
  offset: number;
  length: number;
  flags: number;
  /** The stamp of its condemnation. */
  seq: number;
  sum?: bigint;
}

/**
 * One record of a catalog. Every kind is keyed as the implementations order it (bytes, or
 * ASCII strings compared by bytes), so two exports of equal catalogs list the same items in the
 * same order, and can be compared by walking them side by side.
 */
export type CatalogItem =
  | { kind: "meta"; key: string; value: unknown }
  | { kind: "chunk"; store: string; id: Buffer; rec: ChunkRecord }
  | { kind: "pack"; store: string; id: Buffer; rec: PackRecord }
  | { kind: "trash"; store: string; name: string; entry: TrashEntry }
  | { kind: "condemned"; store: string; id: Buffer; rec: CondemnedRecord }
  | { kind: "manifest"; id: Buffer; bytes: Buffer }
  | { kind: "object"; id: Buffer; obj: ObjectRecord }
  | { kind: "image"; rec: ImageRecord }
  | { kind: "member"; member: Member }
  | { kind: "task"; task: TaskRecord }
  /** `owner`: the tally's key, "" for images without an owner (as both implementations key it). */
  | { kind: "usage"; owner: string; usage: OwnerUsage }
  | { kind: "namespace"; ns: MetadefNamespaceRecord }
  | { kind: "resource_type"; rt: MetadefResourceTypeRecord };

export type ItemKind = CatalogItem["kind"];

/** Every kind, in the order an export lists them (per-store kinds: store by store). */
export const ITEM_KINDS: readonly ItemKind[] = [
  "meta",
  "chunk",
  "pack",
  "trash",
  "condemned",
  "manifest",
  "object",
  "image",
  "member",
  "task",
  "usage",
  "namespace",
  "resource_type",
];

export type KindCounts = Record<ItemKind, number>;

export function zeroCounts(): KindCounts {
  return Object.fromEntries(ITEM_KINDS.map((k) => [k, 0])) as KindCounts;
}

/** Items an import writes per transaction (LMDB) or statement (PostgreSQL). */
export const COPY_BATCH = 2000;

export interface CatalogCopy {
  /**
   * Every record but leases, in ITEM_KINDS order, each kind in key order; stores in byte order
   * of their names. Refuses (LiveLeasesError) while a lease lives.
   */
  exportAll(): AsyncIterable<CatalogItem>;
  /**
   * Writes `items` into this catalog, which must be empty (CatalogNotEmptyError otherwise,
   * before anything is written). Returns how many of each kind it wrote. `onItems`: called
   * after each batch with the items written so far, for progress.
   */
  importAll(items: AsyncIterable<CatalogItem>, onItems?: (done: number) => void): Promise<KindCounts>;
  /** How many records of each kind the catalog holds, counted by the database. */
  countAll(): Promise<KindCounts>;
  /** The stores the catalog has records of (chunks, packs, trash or condemned), in byte order. */
  storeNames(): Promise<string[]>;
  /** Whether the catalog holds nothing at all (no meta key, no lease, no record). */
  isEmpty(): Promise<boolean>;
}

export function canCopy(c: Catalog): c is Catalog & CatalogCopy {
  const x = c as Partial<CatalogCopy>;
  return typeof x.exportAll === "function" && typeof x.importAll === "function";
}

export class CatalogNotEmptyError extends TesseraError {
  constructor(where: string) {
    super(
      "catalog_not_empty",
      `the target catalog ${where} is not empty: a migration copies into an empty catalog only (drop and create the database, or remove the directory, first)`,
    );
  }
}

export class LiveLeasesError extends TesseraError {
  constructor(n: number, holders: string) {
    super(
      "live_leases",
      `${n} lease(s) are alive in the source catalog (${holders}): a write is in progress; stop every Tessera process using it, then migrate`,
    );
  }
}

/** Refuses an export while a write holds a lease (its commit would be lost by the copy). */
export async function refuseLiveLeases(c: Catalog): Promise<void> {
  const live = await c.liveLeases();
  if (live.length === 0) return;
  const holders = live
    .slice(0, 3)
    .map((l) => `${l.holder.what} by pid ${l.holder.pid} on ${l.holder.host}`)
    .join("; ");
  throw new LiveLeasesError(live.length, holders);
}

/** Byte order of two strings (PostgreSQL's COLLATE "C", LMDB's key order). */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * Groups `items` into batches of up to COPY_BATCH, or fewer when they carry many bytes
 * (manifests of big images are megabytes each): what an import writes at once.
 */
export async function* batches(
  items: AsyncIterable<CatalogItem>,
  maxBytes = 64 * 1024 * 1024,
): AsyncGenerator<CatalogItem[]> {
  let batch: CatalogItem[] = [];
  let bytes = 0;
  for await (const item of items) {
    batch.push(item);
    bytes += item.kind === "manifest" ? item.bytes.length : 64;
    if (batch.length >= COPY_BATCH || bytes >= maxBytes) {
      yield batch;
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length > 0) yield batch;
}
