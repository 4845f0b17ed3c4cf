/**
 * Image records in the catalog, and the sort indexes that make listing an index scan.
 *
 * Each sortable attribute K has its own database `image_by_K` whose keys are [value, id]
 * (LMDB keeps them ordered), so a page of images sorted by K is read by walking that index
 * from the marker and loading only the records the page needs. LMDB drops `null` inside array
 * keys, so a null value is indexed as `false`, which orders before every number and string,
 * as NULL does in SQL.
 *
 * The catalog keeps a record, its index entries and its owner's usage in one unit of work
 * (RecordsWriter in catalog.ts); this module is the records' shape and the rules they follow.
 */

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

/** The fields that describe an image, which its owner sets (beside its id and properties). */
export const IMAGE_BASE_FIELDS = [
  "name",
  "visibility",
  "protected",
  "os_hidden",
  "owner",
  "disk_format",
  "container_format",
  "min_disk",
  "min_ram",
  "tags",
] as const;

/**
 * The attributes of Glance's image schema the service sets (or the API adds as links): no
 * client sets them, and none is ever a free-form property.
 */
export const IMAGE_SERVER_KEYS = [
  "status",
  "size",
  "virtual_size",
  "checksum",
  "os_hash_algo",
  "os_hash_value",
  "created_at",
  "updated_at",
  "self",
  "file",
  "schema",
  "direct_url",
  "stores",
  "locations",
] as const;

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
  /**
   * While an upload or stage streams in: the lease it holds (catalog.ts), so that any node can
   * tell an upload in progress from one its crash cut off (images/abandoned-uploads.ts).
   */
  upload_lease?: number | null;
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
export const UPLOADING = new Set<ImageStatus>(["saving", "uploading", "importing"]);

export const NO_USAGE: OwnerUsage = { images: 0, bytes: 0, uploading: 0, staged: 0 };

/** One image's part of its owner's usage. */
export function usageShare(rec: ImageRecord): OwnerUsage {
  return {
    images: 1,
    bytes: rec.size ?? 0,
    uploading: UPLOADING.has(rec.status) ? 1 : 0,
    staged: rec.staged?.size ?? 0,
  };
}

/** The value a record has in sort index `key`: null orders first, as `false`. */
export function indexValue(rec: ImageRecord, key: ImageSortKey): IndexValue {
  const v = rec[key];
  return v === null ? false : v;
}
