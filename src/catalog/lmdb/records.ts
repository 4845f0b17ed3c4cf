/**
 * The image service's records in LMDB, as synchronous functions over the tables: the catalog
 * calls them inside its write transactions (writers) or after its read gate (readers).
 *
 * Each sortable attribute K has its own database `image_by_K` whose keys are [value, id]
 * (LMDB keeps them ordered), so a page sorted by K walks that index from the marker and loads
 * only the records it needs. LMDB drops `null` inside array keys, so a null value is indexed as
 * `false` (indexValue), which orders before every number and string, as NULL does in SQL.
 */
import {
  IMAGE_SORT_KEYS,
  type ImageRecord,
  type ImageSortKey,
  type IndexValue,
  indexValue,
  NO_USAGE,
  type OwnerUsage,
  usageShare,
} from "../image-records.js";
import type { Member } from "../member-records.js";
import { newestFirst, type TaskRecord } from "../task-records.js";
import type { Tables } from "./tables.js";

const EMPTY = Buffer.alloc(0);

/** The usage key of an owner (LMDB keys cannot be empty or null). */
export function ownerKey(owner: string | null): string {
  return `o:${owner ?? ""}`;
}

export function ownerUsage(t: Tables, owner: string | null): OwnerUsage {
  return t.usage.get(ownerKey(owner)) ?? NO_USAGE;
}

function addUsage(t: Tables, owner: string | null, u: OwnerUsage, sign: 1 | -1): void {
  const cur = ownerUsage(t, owner);
  const next = {
    images: cur.images + sign * u.images,
    bytes: cur.bytes + sign * u.bytes,
    uploading: cur.uploading + sign * u.uploading,
    staged: (cur.staged ?? 0) + sign * (u.staged ?? 0),
  };
  if (next.images <= 0) t.usage.removeSync(ownerKey(owner));
  else t.usage.putSync(ownerKey(owner), next);
}

/** Recomputes every owner's usage from the records (layout upgrades). */
export function tallyAll(t: Tables): void {
  t.usage.clearSync();
  const all = new Map<string | null, OwnerUsage>();
  for (const { value } of t.images.getRange()) {
    const u = all.get(value.owner) ?? { ...NO_USAGE };
    const s = usageShare(value);
    u.images += s.images;
    u.bytes += s.bytes;
    u.uploading += s.uploading;
    u.staged = (u.staged ?? 0) + (s.staged ?? 0);
    all.set(value.owner, u);
  }
  for (const [owner, u] of all) t.usage.putSync(ownerKey(owner), u);
}

export function putImage(t: Tables, rec: ImageRecord, prev?: ImageRecord): void {
  for (const k of IMAGE_SORT_KEYS) {
    const v = indexValue(rec, k);
    if (prev) {
      const old = indexValue(prev, k);
      if (old === v) continue;
      t.imageIndexes[k].removeSync([old, rec.id]);
    }
    t.imageIndexes[k].putSync([v, rec.id], EMPTY);
  }
  if (prev) addUsage(t, prev.owner, usageShare(prev), -1);
  addUsage(t, rec.owner, usageShare(rec), 1);
  t.images.putSync(rec.id, rec);
}

export function removeImage(t: Tables, rec: ImageRecord): void {
  for (const k of IMAGE_SORT_KEYS) t.imageIndexes[k].removeSync([indexValue(rec, k), rec.id]);
  addUsage(t, rec.owner, usageShare(rec), -1);
  for (const key of [...t.members.getKeys(memberRange(rec.id))]) t.members.removeSync(key);
  t.images.removeSync(rec.id);
}

export function* scanImageIndex(
  t: Tables,
  key: ImageSortKey,
  dir: "asc" | "desc",
  from?: IndexValue,
): Generator<{ value: IndexValue; id: string }> {
  const reverse = dir === "desc";
  // Ids are ASCII, so "\uffff" sorts after every id with the same value.
  const start = from === undefined ? undefined : reverse ? [from, "\uffff"] : [from];
  for (const k of t.imageIndexes[key].getKeys({ start, reverse })) {
    const [value, id] = k as [IndexValue, string];
    yield { value, id };
  }
}

/** An image's members are one key range: image ids are ASCII, "\uffff" sorts after every project. */
function memberRange(imageId: string) {
  return { start: [imageId], end: [imageId, "\uffff"] };
}

export function getMember(t: Tables, imageId: string, project: string): Member | undefined {
  const rec = t.members.get([imageId, project]);
  return rec && { ...rec, image_id: imageId, member_id: project };
}

export function listMembers(t: Tables, imageId: string): Member[] {
  const out: Member[] = [];
  for (const { key, value } of t.members.getRange(memberRange(imageId))) {
    out.push({ ...value, image_id: imageId, member_id: key[1] });
  }
  return out;
}

export function countMembers(t: Tables, imageId: string): number {
  return t.members.getKeysCount(memberRange(imageId));
}

export function putMember(t: Tables, m: Member): void {
  const { image_id, member_id, ...rec } = m;
  t.members.putSync([image_id, member_id], rec);
}

export function putTask(t: Tables, task: TaskRecord): void {
  t.tasks.putSync(task.id, task);
  t.taskByImage.putSync([task.image_id, task.id], "");
}

export function removeTask(t: Tables, task: TaskRecord): void {
  t.tasks.removeSync(task.id);
  t.taskByImage.removeSync([task.image_id, task.id]);
}

export function listTasks(t: Tables): TaskRecord[] {
  return [...t.tasks.getRange()].map((e) => e.value).sort(newestFirst);
}

export function tasksOfImage(t: Tables, imageId: string): TaskRecord[] {
  const out: TaskRecord[] = [];
  for (const key of t.taskByImage.getKeys({ start: [imageId], end: [imageId, "\uffff"] })) {
    const task = t.tasks.get(key[1]);
    if (task) out.push(task);
  }
  return out.sort(newestFirst);
}
