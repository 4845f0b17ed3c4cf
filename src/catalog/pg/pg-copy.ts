/**
 * Whole-catalog copies out of PostgreSQL (CatalogCopy in ../catalog-copy.ts): every table but
 * `leases`, a page at a time in key order (each page its own statement, as every scan here:
 * the copy is made with the nodes stopped, so nothing changes under it). pg-import.ts writes.
 *
 * The meta key "layout" never travels: it is the version of LMDB's tables (lmdb-copy.ts), which
 * a PostgreSQL catalog has no use for (its schema has its own version, tessera_schema).
 */
import type { QueryResultRow } from "pg";
import { CHUNK_FLAG_SUM } from "../../store/pack-format.js";
import type { ObjectRecord } from "../catalog.js";
import { type CatalogItem, type CondemnedRecord, type KindCounts, zeroCounts } from "../catalog-copy.js";
import type { ImageRecord, OwnerUsage } from "../image-records.js";
import type { MemberRecord } from "../member-records.js";
import type { MetadefNamespaceRecord, MetadefResourceTypeRecord } from "../metadef-records.js";
import type { TaskRecord } from "../task-records.js";
import { keysetScan, scanChunks, scanPacks, scanTrash } from "./chunk-index.js";
import { scanObjects } from "./objects.js";
import { fromI64, num, type Sql } from "./sql.js";

/** The tables a copy reads, and the count of each kind is of. */
const TABLE_OF_KIND: Record<keyof KindCounts, string> = {
  meta: "meta",
  chunk: "chunks",
  pack: "packs",
  trash: "trash",
  condemned: "condemned",
  manifest: "manifests",
  object: "objects",
  image: "images",
  member: "members",
  task: "tasks",
  usage: "usage",
  namespace: "metadef_namespaces",
  resource_type: "metadef_resource_types",
};

/** Manifests per page: a big image's manifest is megabytes, so pages of them stay small. */
const MANIFEST_PAGE = 32;

/** Members per page of their (image_id, project) keyset scan. */
const MEMBER_PAGE = 4000;

export async function pgStoreNames(q: Sql): Promise<string[]> {
  const r = await q.query<{ store: string }>(
    `SELECT store FROM chunks UNION SELECT store FROM packs UNION SELECT store FROM trash
     UNION SELECT store FROM condemned ORDER BY 1`,
  );
  return r.rows.map((row) => row.store);
}

export async function pgIsEmpty(q: Sql): Promise<boolean> {
  const tables = [...Object.values(TABLE_OF_KIND), "leases"];
  const r = await q.query<{ any: boolean }>(
    `SELECT ${tables.map((t) => `EXISTS (SELECT 1 FROM ${t})`).join(" OR ")} AS any`,
  );
  return r.rows[0]?.any === false;
}

export async function pgCounts(q: Sql): Promise<KindCounts> {
  const kinds = Object.keys(TABLE_OF_KIND) as (keyof KindCounts)[];
  const r = await q.query<Record<string, string>>(
    `SELECT ${kinds
      .map(
        (k) =>
          `(SELECT count(*) FROM ${TABLE_OF_KIND[k]}${k === "meta" ? " WHERE key <> 'layout'" : ""}) AS ${k}`,
      )
      .join(", ")}`,
  );
  const c = zeroCounts();
  for (const k of kinds) c[k] = num(r.rows[0]?.[k]) ?? 0;
  return c;
}

interface CondemnedRow extends QueryResultRow {
  id: Buffer;
  pack: Buffer;
  pos: string;
  length: number;
  flags: number;
  seq: string;
  sum: string | null;
}

/** As chunkRecord (chunk-index.ts) does for the index: the sum only where the flag says so. */
function condemnedRecord(r: CondemnedRow): CondemnedRecord {
  const rec: CondemnedRecord = {
    pack: r.pack,
    offset: Number(r.pos),
    length: r.length,
    flags: r.flags,
    seq: Number(r.seq),
  };
  if (r.sum !== null && (r.flags & CHUNK_FLAG_SUM) !== 0) rec.sum = fromI64(r.sum);
  else rec.flags &= ~CHUNK_FLAG_SUM;
  return rec;
}

/** Members in (image_id, project) order: a keyset over the two-column key. */
async function* scanMembers(q: Sql): AsyncGenerator<CatalogItem> {
  let after: [string, string] | undefined;
  for (;;) {
    const r = await q.query<{ image_id: string; project: string; record: MemberRecord }>(
      `SELECT image_id, project, record FROM members
       ${after ? "WHERE (image_id, project) > ($1, $2)" : ""}
       ORDER BY image_id, project LIMIT ${MEMBER_PAGE}`,
      after ?? [],
    );
    for (const row of r.rows)
      yield { kind: "member", member: { ...row.record, image_id: row.image_id, member_id: row.project } };
    const last = r.rows[r.rows.length - 1];
    if (r.rows.length < MEMBER_PAGE || last === undefined) return;
    after = [last.image_id, last.project];
  }
}

/** Every record but leases (and "layout"), in ITEM_KINDS order. */
export async function* exportPg(q: Sql): AsyncGenerator<CatalogItem> {
  for await (const row of keysetScan<{ key: string; value: unknown }>(q, {
    table: "meta",
    columns: "key, value",
    key: "key",
  })) {
    if (row.key !== "layout") yield { kind: "meta", key: row.key, value: row.value };
  }
  for (const store of await pgStoreNames(q)) {
    for await (const { id, rec } of scanChunks(q, store)) yield { kind: "chunk", store, id, rec };
    for await (const { id, rec } of scanPacks(q, store)) yield { kind: "pack", store, id, rec };
    for await (const { name, entry } of scanTrash(q, store)) yield { kind: "trash", store, name, entry };
    const condemned = {
      table: "condemned",
      columns: "id, pack, pos, length, flags, seq, sum",
      key: "id",
      store,
    };
    for await (const row of keysetScan<CondemnedRow>(q, condemned))
      yield { kind: "condemned", store, id: row.id, rec: condemnedRecord(row) };
  }
  const manifests = { table: "manifests", columns: "id, bytes", key: "id", page: MANIFEST_PAGE };
  for await (const row of keysetScan<{ id: Buffer; bytes: Buffer }>(q, manifests))
    yield { kind: "manifest", id: row.id, bytes: row.bytes };
  for await (const { id, obj } of scanObjects(q)) yield { kind: "object", id, obj: obj as ObjectRecord };
  for await (const row of keysetScan<{ id: string; record: ImageRecord }>(q, {
    table: "images",
    columns: "id, record",
    key: "id",
  }))
    yield { kind: "image", rec: row.record };
  yield* scanMembers(q);
  for await (const row of keysetScan<{ id: string; record: TaskRecord }>(q, {
    table: "tasks",
    columns: "id, record",
    key: "id",
  }))
    yield { kind: "task", task: row.record };
  for await (const row of keysetScan<{ owner: string; record: OwnerUsage }>(q, {
    table: "usage",
    columns: "owner, record",
    key: "owner",
  }))
    yield { kind: "usage", owner: row.owner, usage: row.record };
  const namespaces = { table: "metadef_namespaces", columns: "name, record", key: "name" };
  for await (const row of keysetScan<{ name: string; record: MetadefNamespaceRecord }>(q, namespaces))
    yield { kind: "namespace", ns: row.record };
  const types = { table: "metadef_resource_types", columns: "name, record", key: "name" };
  for await (const row of keysetScan<{ name: string; record: MetadefResourceTypeRecord }>(q, types))
    yield { kind: "resource_type", rt: row.record };
}
