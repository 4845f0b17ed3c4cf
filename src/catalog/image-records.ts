/**
 * Image records in the catalog, and the sort indexes that make listing an index scan.
 *
 * Each sortable attribute K has its own database `image_by_K` whose keys are [value, id]
 * (LMDB keeps them ordered), so a page of images sorted by K is read by walking that index
 * from the marker and loading only the records the page needs. LMDB drops `null` inside array
 * keys, so a null value is indexed as `false`, which orders before every number and string,
 * as NULL does in SQL.
 *
 * Writers call these inside a catalog transaction (Catalog.transaction), so a record and its
 * index entries change together.
 */
import type { Catalog } from "./catalog.js";
import { removeMembers } from "./member-records.js";

export const IMAGE_STATUSES = [
  "queued",
  "saving",
  "active",
  "killed",
  "deleted",
  "uploading",
  "importing",
  "pending_delete",
  "deactivated",
] as const;
export type ImageStatus = (typeof IMAGE_STATUSES)[number];

/** The attributes Glance can sort by, in the order its error message lists them. */
export const IMAGE_SORT_KEYS = [
  "name",
  "status",
  "container_format",
  "disk_format",
  "size",
  "id",
  "created_at",
  "updated_at",
] as const;
export type ImageSortKey = (typeof IMAGE_SORT_KEYS)[number];

export interface ImageRecord {
  id: string;
  name: string | null;
  status: ImageStatus;
  visibility: "public" | "private" | "shared" | "community";
  protected: boolean;
  os_hidden: boolean;
  owner: string | null;
  disk_format: string | null;
  container_format: string | null;
  min_disk: number;
  min_ram: number;
  size: number | null;
  virtual_size: number | null;
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  /** ISO 8601 with milliseconds; the API shows whole seconds as Glance does. */
  created_at: string;
  updated_at: string;
  tags: string[];
  /** Free-form properties (Glance's additional properties: string values). */
  properties: Record<string, string>;
  /** Hex manifest id of the image's data in the engine, once uploaded. */
  object: string | null;
  /** The stores holding the image's data (each holds the object once for this image). */
  stores: string[];
  /**
   * Data staged for a glance-direct import (PUT /stage): already chunks in the engine, held
   * once in `store` until the import takes it or the image goes.
   */
  staged?: { object: string; store: string; size: number } | null;
}

export type IndexValue = string | number | boolean;

/**
 * What one owner has, for quotas (Glance's image_count_total, image_size_total,
 * image_count_uploading): kept by putImage and removeImage in the transaction that changes the
 * records, so a quota check is one read, not a scan of the owner's images.
 */
export interface OwnerUsage {
  images: number;
  /** The sizes of the owner's images, summed: logical bytes, whatever deduplication saves. */
  bytes: number;
  /** Images whose data is on its way in (saving, uploading, importing). */
  uploading: number;
  /** Bytes staged for imports (absent in tallies written before staging existed). */
  staged?: number;
}

/** Statuses in which an image's data is on its way in (Glance's image_count_uploading). */
const UPLOADING = new Set<ImageStatus>(["saving", "uploading", "importing"]);

const NO_USAGE: OwnerUsage = { images: 0, bytes: 0, uploading: 0, staged: 0 };

/** The usage key of an owner (LMDB keys cannot be empty or null). */
function ownerKey(owner: string | null): string {
  return `o:${owner ?? ""}`;
}

export function ownerUsage(cat: Catalog, owner: string | null): OwnerUsage {
  return cat.usage.get(ownerKey(owner)) ?? NO_USAGE;
}

function share(rec: ImageRecord): OwnerUsage {
  return {
    images: 1,
    bytes: rec.size ?? 0,
    uploading: UPLOADING.has(rec.status) ? 1 : 0,
    staged: rec.staged?.size ?? 0,
  };
}

function addUsage(cat: Catalog, owner: string | null, u: OwnerUsage, sign: 1 | -1): void {
  const cur = ownerUsage(cat, owner);
  const next = {
    images: cur.images + sign * u.images,
    bytes: cur.bytes + sign * u.bytes,
    uploading: cur.uploading + sign * u.uploading,
    staged: (cur.staged ?? 0) + sign * (u.staged ?? 0),
  };
  if (next.images <= 0) cat.usage.removeSync(ownerKey(owner));
  else cat.usage.putSync(ownerKey(owner), next);
}

/** Recomputes every owner's usage from the records (inside a transaction; layout upgrades). */
export function tallyAll(cat: Catalog): void {
  cat.usage.clearSync();
  const all = new Map<string | null, OwnerUsage>();
  for (const { value } of cat.images.getRange()) {
    const u = all.get(value.owner) ?? { ...NO_USAGE };
    const s = share(value);
    u.images += s.images;
    u.bytes += s.bytes;
    u.uploading += s.uploading;
    u.staged = (u.staged ?? 0) + (s.staged ?? 0);
    all.set(value.owner, u);
  }
  for (const [owner, u] of all) cat.usage.putSync(ownerKey(owner), u);
}

export function indexValue(rec: ImageRecord, key: ImageSortKey): IndexValue {
  const v = rec[key];
  return v === null ? false : v;
}

const EMPTY = Buffer.alloc(0);

export function getImage(cat: Catalog, id: string): ImageRecord | undefined {
  return cat.images.get(id);
}

/** Writes a record and moves its index entries from `prev`'s values (inside a transaction). */
export function putImage(cat: Catalog, rec: ImageRecord, prev?: ImageRecord): void {
  for (const k of IMAGE_SORT_KEYS) {
    const v = indexValue(rec, k);
    if (prev) {
      const old = indexValue(prev, k);
      if (old === v) continue;
      cat.imageIndexes[k].removeSync([old, rec.id]);
    }
    cat.imageIndexes[k].putSync([v, rec.id], EMPTY);
  }
  if (prev) addUsage(cat, prev.owner, share(prev), -1);
  addUsage(cat, rec.owner, share(rec), 1);
  cat.images.putSync(rec.id, rec);
}

/** Removes a record and its index entries (inside a transaction). */
export function removeImage(cat: Catalog, rec: ImageRecord): void {
  for (const k of IMAGE_SORT_KEYS) cat.imageIndexes[k].removeSync([indexValue(rec, k), rec.id]);
  addUsage(cat, rec.owner, share(rec), -1);
  removeMembers(cat, rec.id);
  cat.images.removeSync(rec.id);
}

/**
 * Image ids in the order of one sort index, starting at `from` (inclusive of every id with
 * that value) and walking in `dir`. Lazily: a page reads only as far as it needs.
 */
export function* scanImageIndex(
  cat: Catalog,
  key: ImageSortKey,
  dir: "asc" | "desc",
  from?: IndexValue,
): Generator<{ value: IndexValue; id: string }> {
  const reverse = dir === "desc";
  // Ids are ASCII, so "\uffff" sorts after every id with the same value.
  const start = from === undefined ? undefined : reverse ? [from, "\uffff"] : [from];
  for (const k of cat.imageIndexes[key].getKeys({ start, reverse })) {
    const [value, id] = k as [IndexValue, string];
    yield { value, id };
  }
}
