/**
 * The image service's records in PostgreSQL: images (a JSON record and a column per sort key),
 * members, tasks and owners' usage, kept together in the caller's unit of work.
 *
 * Mirrors catalog/lmdb/records.ts. A sort index there is a database of [value, id] keys; here it
 * is a column with a btree index on (column, id), COLLATE "C" so text orders by bytes as LMDB's
 * keys do. LMDB indexes null as `false`, before every number and string: scanImages walks the
 * NULLs as their own segment (first ascending, last descending), so each query excludes NULLs
 * or holds only them, and the plain (column, id) index serves both directions.
 *
 * Usage is keyed by owner, '' for a null owner: as in LMDB (its key `o:${owner ?? ""}`), a
 * null owner and an empty-string owner share one tally (Glance owners are project ids, never '').
 */
import {
  IMAGE_SORT_KEYS,
  type ImageRecord,
  type ImageSortKey,
  type IndexValue,
  NO_USAGE,
  type OwnerUsage,
  usageShare,
} from "../image-records.js";
import type { Member, MemberRecord } from "../member-records.js";
import type { TaskRecord } from "../task-records.js";
import { num, type Sql } from "./sql.js";

// ---- images ----

export async function getImage(q: Sql, id: string): Promise<ImageRecord | undefined> {
  const r = await q.query<{ record: ImageRecord }>("SELECT record FROM images WHERE id = $1", [id]);
  return r.rows[0]?.record;
}

export async function getImages(q: Sql, ids: readonly string[]): Promise<(ImageRecord | undefined)[]> {
  if (ids.length === 0) return [];
  const r = await q.query<{ id: string; record: ImageRecord }>(
    "SELECT id, record FROM images WHERE id = ANY($1::text[])",
    [[...ids]],
  );
  const byId = new Map(r.rows.map((row) => [row.id, row.record]));
  return ids.map((id) => byId.get(id));
}

/** The sort columns besides id, in the order putImage writes them. */
const SORT_COLUMNS = [
  "name",
  "status",
  "container_format",
  "disk_format",
  "size",
  "created_at",
  "updated_at",
] as const;

export async function putImage(q: Sql, rec: ImageRecord, prev?: ImageRecord): Promise<void> {
  // The columns follow the record whatever `prev` says; `prev` only moves the usage, as in LMDB.
  const cols = ["id", "record", "owner", ...SORT_COLUMNS];
  const values = [rec.id, JSON.stringify(rec), rec.owner, ...SORT_COLUMNS.map((k) => rec[k])];
  await q.query(
    `INSERT INTO images (${cols.join(", ")}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(", ")})
     ON CONFLICT (id) DO UPDATE SET ${cols
       .slice(1)
       .map((c) => `${c} = EXCLUDED.${c}`)
       .join(", ")}`,
    values,
  );
  if (prev) await moveUsage(q, prev.owner, usageShare(prev), rec.owner, usageShare(rec));
  else await addUsage(q, rec.owner, usageShare(rec));
}

export async function removeImage(q: Sql, rec: ImageRecord): Promise<void> {
  await q.query("DELETE FROM images WHERE id = $1", [rec.id]);
  await q.query("DELETE FROM members WHERE image_id = $1", [rec.id]);
  await addUsage(q, rec.owner, negate(usageShare(rec)));
}

// ---- usage ----

function ownerKey(owner: string | null): string {
  return owner ?? "";
}

export async function ownerUsage(q: Sql, owner: string | null): Promise<OwnerUsage> {
  const r = await q.query<{ record: OwnerUsage }>("SELECT record FROM usage WHERE owner = $1", [
    ownerKey(owner),
  ]);
  return r.rows[0]?.record ?? { ...NO_USAGE };
}

function negate(u: OwnerUsage): OwnerUsage {
  return { images: -u.images, bytes: -u.bytes, uploading: -u.uploading, staged: -(u.staged ?? 0) };
}

function sum(a: OwnerUsage, b: OwnerUsage): OwnerUsage {
  return {
    images: a.images + b.images,
    bytes: a.bytes + b.bytes,
    uploading: a.uploading + b.uploading,
    staged: (a.staged ?? 0) + (b.staged ?? 0),
  };
}

/**
 * Moves one image's share from its old owner to its new. With one owner the two shares net out
 * first: one read and one write, or none when nothing changed (fewer rows for concurrent units
 * of work to conflict on).
 */
async function moveUsage(
  q: Sql,
  from: string | null,
  out: OwnerUsage,
  to: string | null,
  into: OwnerUsage,
): Promise<void> {
  if (ownerKey(from) !== ownerKey(to)) {
    await addUsage(q, from, negate(out));
    await addUsage(q, to, into);
    return;
  }
  const d = sum(negate(out), into);
  if (d.images !== 0 || d.bytes !== 0 || d.uploading !== 0 || d.staged !== 0) await addUsage(q, to, d);
}

/** Adds `d` to an owner's tally; a tally left with no images goes, as LMDB's addUsage does. */
async function addUsage(q: Sql, owner: string | null, d: OwnerUsage): Promise<void> {
  const key = ownerKey(owner);
  const next = sum(await ownerUsage(q, owner), d);
  if (next.images <= 0) {
    await q.query("DELETE FROM usage WHERE owner = $1", [key]);
    return;
  }
  await q.query(
    `INSERT INTO usage (owner, record) VALUES ($1, $2)
     ON CONFLICT (owner) DO UPDATE SET record = EXCLUDED.record`,
    [key, JSON.stringify(next)],
  );
}

// ---- the sort indexes ----

/** Rows per keyset query: the first small (a listing page often stops early), then larger. */
const FIRST_PAGE = 64;
const MAX_PAGE = 512;

/** What a scan covers of each segment of the index: the NULLs, and the values (from `bound`). */
interface Span {
  nulls: boolean;
  values: boolean;
  bound?: string | number;
}

/**
 * Where `from` falls in the index, in LMDB's key order (ordered-binary: false < true < numbers <
 * strings), for a column of numbers (size) or of strings (every other).
 */
function span(key: ImageSortKey, dir: "asc" | "desc", from: IndexValue | undefined): Span {
  const asc = dir === "asc";
  if (from === undefined || from === false) return { nulls: true, values: asc || from === undefined };
  const rank = (v: IndexValue) => (typeof v === "boolean" ? 0 : typeof v === "number" ? 1 : 2);
  const diff = rank(from) - (key === "size" ? 1 : 2);
  // Before every value (true, or a number among strings), or after every one (a string among numbers).
  if (diff < 0) return asc ? { nulls: false, values: true } : { nulls: true, values: false };
  if (diff > 0) return asc ? { nulls: false, values: false } : { nulls: true, values: true };
  if (typeof from !== "number") return { nulls: !asc, values: true, bound: from as string };
  // size is an integer column: a fractional bound rounds inward, one past bigint has no bound.
  const b = asc ? Math.ceil(from) : Math.floor(from);
  if (Math.abs(b) < 2 ** 63) return { nulls: !asc, values: true, bound: b };
  return { nulls: !asc, values: asc ? b < 0 : b > 0 };
}

/**
 * Image ids in the order of sort index `key`, lazily: each page is one keyset query on the
 * (column, id) index, resuming after the last entry the previous page gave. Pages are separate
 * statements, so on the pool a scan may see commits made while it runs.
 */
export function scanImages(
  q: Sql,
  key: ImageSortKey,
  dir: "asc" | "desc",
  from?: IndexValue,
): AsyncIterable<{ value: IndexValue; id: string }> {
  // The key becomes an identifier in the SQL: only a known one may.
  if (!IMAGE_SORT_KEYS.includes(key)) throw new Error(`not an image sort key: ${String(key)}`);
  const s = span(key, dir, from);
  return (async function* () {
    if (dir === "asc" && s.nulls) yield* scanNulls(q, key, dir);
    if (s.values) yield* scanValues(q, key, dir, s.bound);
    if (dir === "desc" && s.nulls) yield* scanNulls(q, key, dir);
  })();
}

async function* scanValues(
  q: Sql,
  key: ImageSortKey,
  dir: "asc" | "desc",
  bound: string | number | undefined,
): AsyncGenerator<{ value: IndexValue; id: string }> {
  const [cmp, after, order] = dir === "asc" ? [">=", ">", "ASC"] : ["<=", "<", "DESC"];
  // ORDER BY keeps PostgreSQL's default NULLS placement for the direction so that the index
  // scan needs no sort; the WHERE keeps NULLs out either way.
  const orderBy = key === "id" ? `id ${order}` : `${key} ${order}, id ${order}`;
  let last: { value: string | number; id: string } | undefined;
  for (let limit = FIRST_PAGE; ; limit = Math.min(limit * 2, MAX_PAGE)) {
    let where: string;
    let values: unknown[];
    if (last) {
      [where, values] =
        key === "id"
          ? [`id ${after} $1`, [last.id]]
          : [`(${key}, id) ${after} ($1, $2)`, [last.value, last.id]];
    } else if (bound !== undefined) {
      [where, values] = [`${key} ${cmp} $1`, [bound]];
    } else {
      [where, values] = [`${key} IS NOT NULL`, []];
    }
    const r = await q.query<{ v: string; id: string }>(
      `SELECT ${key} AS v, id FROM images WHERE ${where} ORDER BY ${orderBy} LIMIT ${limit}`,
      values,
    );
    for (const row of r.rows) {
      last = { value: key === "size" ? (num(row.v) as number) : row.v, id: row.id };
      yield last;
    }
    if (r.rows.length < limit) return;
  }
}

/** The entries whose value is NULL (indexed as `false`), by id. */
async function* scanNulls(
  q: Sql,
  key: ImageSortKey,
  dir: "asc" | "desc",
): AsyncGenerator<{ value: IndexValue; id: string }> {
  if (key === "id") return;
  const [after, order] = dir === "asc" ? [">", "ASC"] : ["<", "DESC"];
  let last: string | undefined;
  for (let limit = FIRST_PAGE; ; limit = Math.min(limit * 2, MAX_PAGE)) {
    const r = await q.query<{ id: string }>(
      `SELECT id FROM images WHERE ${key} IS NULL${last === undefined ? "" : ` AND id ${after} $1`}
       ORDER BY ${key} ${order}, id ${order} LIMIT ${limit}`,
      last === undefined ? [] : [last],
    );
    for (const row of r.rows) {
      last = row.id;
      yield { value: false, id: row.id };
    }
    if (r.rows.length < limit) return;
  }
}

// ---- members ----

export async function getMember(q: Sql, imageId: string, project: string): Promise<Member | undefined> {
  const r = await q.query<{ record: MemberRecord }>(
    "SELECT record FROM members WHERE image_id = $1 AND project = $2",
    [imageId, project],
  );
  const rec = r.rows[0]?.record;
  return rec && { ...rec, image_id: imageId, member_id: project };
}

export async function listMembers(q: Sql, imageId: string): Promise<Member[]> {
  const r = await q.query<{ project: string; record: MemberRecord }>(
    "SELECT project, record FROM members WHERE image_id = $1 ORDER BY project",
    [imageId],
  );
  return r.rows.map((row) => ({ ...row.record, image_id: imageId, member_id: row.project }));
}

export async function countMembers(q: Sql, imageId: string): Promise<number> {
  const r = await q.query<{ n: string }>("SELECT count(*) AS n FROM members WHERE image_id = $1", [imageId]);
  return num(r.rows[0]?.n) ?? 0;
}

export async function putMember(q: Sql, m: Member): Promise<void> {
  const { image_id, member_id, ...rec } = m;
  await q.query(
    `INSERT INTO members (image_id, project, record) VALUES ($1, $2, $3)
     ON CONFLICT (image_id, project) DO UPDATE SET record = EXCLUDED.record`,
    [image_id, member_id, JSON.stringify(rec)],
  );
}

export async function removeMember(q: Sql, imageId: string, project: string): Promise<void> {
  await q.query("DELETE FROM members WHERE image_id = $1 AND project = $2", [imageId, project]);
}

// ---- tasks ----

/**
 * Newest first, ties by id descending: task-records.ts newestFirst. Byte order (COLLATE "C")
 * equals its JavaScript string comparison for ASCII, which ISO timestamps and task ids are.
 */
const NEWEST_FIRST = "ORDER BY created_at DESC, id DESC";

export async function getTask(q: Sql, id: string): Promise<TaskRecord | undefined> {
  const r = await q.query<{ record: TaskRecord }>("SELECT record FROM tasks WHERE id = $1", [id]);
  return r.rows[0]?.record;
}

export async function listTasks(q: Sql): Promise<TaskRecord[]> {
  const r = await q.query<{ record: TaskRecord }>(`SELECT record FROM tasks ${NEWEST_FIRST}`);
  return r.rows.map((row) => row.record);
}

export async function tasksOfImage(q: Sql, imageId: string): Promise<TaskRecord[]> {
  const r = await q.query<{ record: TaskRecord }>(
    `SELECT record FROM tasks WHERE image_id = $1 ${NEWEST_FIRST}`,
    [imageId],
  );
  return r.rows.map((row) => row.record);
}

export async function putTask(q: Sql, t: TaskRecord): Promise<void> {
  await q.query(
    `INSERT INTO tasks (id, image_id, created_at, record) VALUES ($1, $2, $3, $4)
     ON CONFLICT (id) DO UPDATE SET image_id = EXCLUDED.image_id, created_at = EXCLUDED.created_at,
       record = EXCLUDED.record`,
    [t.id, t.image_id, t.created_at, JSON.stringify(t)],
  );
}

export async function removeTask(q: Sql, t: TaskRecord): Promise<void> {
  await q.query("DELETE FROM tasks WHERE id = $1", [t.id]);
}
