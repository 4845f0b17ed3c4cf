/**
 * GET /v2/images: one page of images, walking the sort index of the first sort key from the
 * marker, so a page reads only as far as it needs.
 */
import type { RecordsReader } from "../catalog/catalog.js";
import {
  type ImageRecord,
  type ImageSortKey,
  type IndexValue,
  indexValue,
} from "../catalog/image-records.js";
import { BadRequestError } from "../errors.js";

export interface SortSpec {
  key: ImageSortKey;
  dir: "asc" | "desc";
}

export interface ListQuery {
  /** Sort keys in priority order; created_at desc and id desc are appended as tie-breakers. */
  sort: SortSpec[];
  limit: number;
  /** List the images after this one (in the sort order). */
  marker?: string;
  /** Keeps the records the listing shows. */
  match: (rec: ImageRecord) => boolean | Promise<boolean>;
  /** Whether the caller sees a record: a marker it does not see is as unknown as a missing one. */
  sees?: (rec: ImageRecord, records: RecordsReader) => Promise<boolean>;
}

/**
 * One page of images: walks the index of the first sort key from the marker, sorts each
 * run of equal values by the remaining keys, and stops as soon as the page is full.
 */
export async function listImages(records: RecordsReader, q: ListQuery): Promise<ImageRecord[]> {
  if (q.limit <= 0) return [];
  const sort = [...q.sort];
  for (const key of ["created_at", "id"] as const) {
    if (!sort.some((s) => s.key === key)) sort.push({ key, dir: "desc" });
  }
  const [primary, ...rest] = sort;
  const cmpRest = (a: ImageRecord, b: ImageRecord): number => {
    for (const s of rest) {
      const c = compareValues(indexValue(a, s.key), indexValue(b, s.key));
      if (c !== 0) return s.dir === "asc" ? c : -c;
    }
    return 0;
  };
  let marker: ImageRecord | undefined;
  let from: IndexValue | undefined;
  if (q.marker !== undefined) {
    marker = await records.getImage(q.marker);
    if (!marker || (q.sees && !(await q.sees(marker, records))))
      throw new BadRequestError(`No image found with ID ${q.marker}`);
    from = indexValue(marker, primary.key);
  }
  const out: ImageRecord[] = [];
  let group: ImageRecord[] = [];
  let groupValue: IndexValue | undefined;
  const flush = async (): Promise<boolean> => {
    group.sort(cmpRest);
    for (const r of group) {
      if (marker && groupValue === from && cmpRest(r, marker) <= 0) continue;
      if (await q.match(r)) out.push(r);
      if (out.length >= q.limit) return true;
    }
    group = [];
    return false;
  };
  // Index entries are read ahead a batch at a time, and their records loaded in one call.
  let batch: { value: IndexValue; id: string }[] = [];
  const take = async (): Promise<boolean> => {
    const recs = await records.getImages(batch.map((e) => e.id));
    for (const [k, { value }] of batch.entries()) {
      if (group.length > 0 && value !== groupValue && (await flush())) return true;
      groupValue = value;
      const rec = recs[k];
      if (rec) group.push(rec);
    }
    batch = [];
    return false;
  };
  for await (const entry of records.scanImages(primary.key, primary.dir, from)) {
    batch.push(entry);
    if (batch.length >= READ_AHEAD && (await take())) return out;
  }
  if (await take()) return out;
  await flush();
  return out.slice(0, q.limit);
}

/** Index entries read ahead of the page: a page of a hundred is one or two loads. */
const READ_AHEAD = 64;

/** A total order on index values: false (null) < booleans < numbers < strings. */
function compareValues(a: IndexValue, b: IndexValue): number {
  const rank = (v: IndexValue) => (typeof v === "boolean" ? 0 : typeof v === "number" ? 1 : 2);
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  return a < b ? -1 : a > b ? 1 : 0;
}
