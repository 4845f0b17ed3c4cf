/**
 * One store's chunk index, packs and trash in PostgreSQL, for reading (ChunkIndex in
 * catalog.ts): lookups answer a whole batch of ids in one query; scans page by key.
 */
import type { QueryResultRow } from "pg";
import { manifestIdFromName, packIdFromName } from "../../store/names.js";
import { CHUNK_FLAG_SUM } from "../../store/pack-format.js";
import type { ChunkRecord, PackRecord, TrashEntry } from "../store-index.js";
import { fromI64, num, type Sql } from "./sql.js";

/**
 * Rows a scan reads per query: big enough that a million-entry scan is a few hundred round
 * trips, small enough that no page holds much memory or a long-running statement.
 */
const SCAN_PAGE = 4000;

/** A chunks row as node-postgres returns it (int8 as text). */
export interface ChunkRow extends QueryResultRow {
  id: Buffer;
  pack: Buffer;
  pos: string;
  length: number;
  flags: number;
  refs: number;
  sum: string | null;
}

export const CHUNK_COLUMNS = "id, pack, pos, length, flags, refs, sum";

/** As LMDB's decodeChunkRecord: the sum only where the flag says it is meaningful. */
export function chunkRecord(r: ChunkRow): ChunkRecord {
  const rec: ChunkRecord = {
    pack: r.pack,
    offset: Number(r.pos),
    length: r.length,
    flags: r.flags,
    refs: r.refs,
  };
  if (r.sum !== null && (r.flags & CHUNK_FLAG_SUM) !== 0) rec.sum = fromI64(r.sum);
  else rec.flags &= ~CHUNK_FLAG_SUM;
  return rec;
}

/** A view of the same bytes as a Buffer (no copy). */
function asBuffer(id: Uint8Array): Buffer {
  return Buffer.isBuffer(id) ? id : Buffer.from(id.buffer, id.byteOffset, id.byteLength);
}

/**
 * A batch of ids as a FROM item of rows (i, id), i counting from 0 in input order, so that one
 * statement answers or changes a whole batch. Ids of one width (chunk ids always are) go as a
 * single binary parameter, cut apart by the server: as a text array of bytea, tens of
 * thousands of ids cost node-postgres and the server several times as much to encode and
 * parse (measured: ~60 ms against ~150-270 ms for 50,000 ids). `param`: the parameter's number.
 */
export function idRows(ids: readonly Uint8Array[], param: number): { from: string; value: unknown } {
  const width = ids[0]?.byteLength ?? 0;
  if (width > 0 && ids.every((id) => id.byteLength === width)) {
    return {
      from: `(SELECT i, substring($${param}::bytea FROM i * ${width} + 1 FOR ${width}) AS id
                FROM generate_series(0, ${ids.length - 1}) AS i)`,
      value: Buffer.concat(ids),
    };
  }
  return {
    from: `(SELECT (n - 1)::integer AS i, id FROM unnest($${param}::bytea[]) WITH ORDINALITY AS a(id, n))`,
    value: ids.map(asBuffer),
  };
}

/**
 * Every row of `table` (of `store`, when given) in `key` order, read lazily a page at a time,
 * each page its own statement: a scan never holds a transaction or a cursor open while its
 * consumer works, so commits made meanwhile may or may not show (as the contract allows).
 */
export async function* keysetScan<R extends QueryResultRow>(
  q: Sql,
  from: { table: string; columns: string; key: string; store?: string; page?: number },
): AsyncGenerator<R> {
  // `page`: fewer rows per query for big rows (manifests of big images are megabytes each).
  const page = from.page ?? SCAN_PAGE;
  let after: unknown;
  for (;;) {
    const values: unknown[] = [];
    const where: string[] = [];
    if (from.store !== undefined) {
      values.push(from.store);
      where.push(`store = $${values.length}`);
    }
    if (after !== undefined) {
      values.push(after);
      where.push(`${from.key} > $${values.length}`);
    }
    const cond = where.length > 0 ? `WHERE ${where.join(" AND ")}` : "";
    const r = await q.query<R>(
      `SELECT ${from.columns} FROM ${from.table} ${cond} ORDER BY ${from.key} LIMIT ${page}`,
      values,
    );
    yield* r.rows;
    const last = r.rows[r.rows.length - 1];
    if (r.rows.length < page || last === undefined) return;
    after = last[from.key];
  }
}

/**
 * The lookup of a batch of ids of one width, prepared once per connection, its whole answer
 * one bytea of packed records (packedRecords): node-postgres parsing seven text columns of
 * each of 512 rows cost as much as the server's index probes (a scratch A/B beside bench/catalog.ts on
 * 2M chunks, 4 callers: 145k lookups/s as rows, 215k as one bytea).
 */
export const LOOKUP_TEXT = `SELECT string_agg(int4send(i) || int2send(length(c.pack)::int2) || c.pack || int8send(c.pos)
                       || int4send(c.length) || int4send(c.flags) || int4send(c.refs)
                       || CASE WHEN c.sum IS NULL THEN '\\x00'::bytea ELSE '\\x01'::bytea || int8send(c.sum) END,
                       ''::bytea) AS found
           FROM ${probes("pack, pos, length, flags, refs, sum")}`;

const LOOKUP = { name: "tessera_chunk_lookup", text: LOOKUP_TEXT };

/** contains' statement: the indexes of the ids found, as int4s in one bytea. */
const CONTAINS: { name: string; text: string } = {
  name: "tessera_chunk_contains",
  text: `SELECT string_agg(int4send(i), ''::bytea) AS found FROM ${probes("1")}`,
};

/**
 * Rows (i, `columns`) of the chunks of store $1 among the ids in $2 (concatenated, each $3
 * bytes, $4 of them), one index probe per id, so that one prepared statement serves every
 * batch. The probe is a lateral subquery kept apart from the join (OFFSET 0): a generic plan
 * does not know the batch's size, and planned as a join it read the whole chunks table into
 * a hash per batch when the table was small (2.2 ms per lookup of 128 at 16k chunks, seen in
 * pg_stat_statements), and would at any size it misjudged.
 */
function probes(columns: string): string {
  return `generate_series(0, $4::integer - 1) AS i,
          LATERAL (SELECT ${columns} FROM chunks
                    WHERE store = $1 AND id = substring($2::bytea FROM i * $3 + 1 FOR $3) OFFSET 0) AS c`;
}

/** The prepared statements' parameters for `ids`, or undefined when their widths differ. */
function sameWidth(store: string, ids: readonly Uint8Array[]): unknown[] | undefined {
  const width = ids[0]?.byteLength ?? 0;
  if (width === 0 || !ids.every((id) => id.byteLength === width)) return undefined;
  return [store, Buffer.concat(ids), width, ids.length];
}

/** LOOKUP's answer, each record at its index in `out`. */
function packedRecords(b: Buffer, out: (ChunkRecord | undefined)[]): void {
  for (let o = 0; o < b.length; ) {
    const i = b.readInt32BE(o);
    const packLen = b.readUInt16BE(o + 4);
    o += 6;
    const pack = b.subarray(o, o + packLen);
    o += packLen;
    const rec: ChunkRecord = {
      pack,
      offset: Number(b.readBigInt64BE(o)),
      length: b.readInt32BE(o + 8),
      flags: b.readInt32BE(o + 12),
      refs: b.readInt32BE(o + 16),
    };
    const hasSum = b[o + 20] === 1;
    o += 21;
    // As chunkRecord: the sum only where the flag says it is meaningful.
    if (hasSum && (rec.flags & CHUNK_FLAG_SUM) !== 0) rec.sum = BigInt.asUintN(64, b.readBigInt64BE(o));
    else rec.flags &= ~CHUNK_FLAG_SUM;
    if (hasSum) o += 8;
    out[i] = rec;
  }
}

export async function lookup(
  q: Sql,
  store: string,
  ids: readonly Uint8Array[],
): Promise<(ChunkRecord | undefined)[]> {
  const out: (ChunkRecord | undefined)[] = new Array(ids.length).fill(undefined);
  if (ids.length === 0) return out;
  const values = sameWidth(store, ids);
  if (values) {
    const found = (await q.query<{ found: Buffer | null }>({ ...LOOKUP, values })).rows[0]?.found;
    if (found) packedRecords(found, out);
    return out;
  }
  const u = idRows(ids, 2);
  const r = await q.query<ChunkRow & { i: number }>(
    `SELECT u.i, c.id, c.pack, c.pos, c.length, c.flags, c.refs, c.sum
       FROM ${u.from} AS u JOIN chunks c ON c.store = $1 AND c.id = u.id`,
    [store, u.value],
  );
  for (const row of r.rows) out[row.i] = chunkRecord(row);
  return out;
}

export async function contains(q: Sql, store: string, ids: readonly Uint8Array[]): Promise<boolean[]> {
  const out: boolean[] = new Array(ids.length).fill(false);
  if (ids.length === 0) return out;
  const values = sameWidth(store, ids);
  if (values) {
    const found = (await q.query<{ found: Buffer | null }>({ ...CONTAINS, values })).rows[0]?.found;
    for (let o = 0; found && o < found.length; o += 4) out[found.readInt32BE(o)] = true;
    return out;
  }
  const u = idRows(ids, 2);
  const r = await q.query<{ i: number }>(
    `SELECT u.i FROM ${u.from} AS u JOIN chunks c ON c.store = $1 AND c.id = u.id`,
    [store, u.value],
  );
  for (const row of r.rows) out[row.i] = true;
  return out;
}

export async function* scanChunks(q: Sql, store: string): AsyncIterable<{ id: Buffer; rec: ChunkRecord }> {
  for await (const row of keysetScan<ChunkRow>(q, {
    table: "chunks",
    columns: CHUNK_COLUMNS,
    key: "id",
    store,
  }))
    yield { id: row.id, rec: chunkRecord(row) };
}

interface PackRow extends QueryResultRow {
  id: Buffer;
  size: string;
  chunks: number;
  created_at: string;
  revived: string | null;
}

export async function* scanPacks(q: Sql, store: string): AsyncIterable<{ id: Buffer; rec: PackRecord }> {
  const columns = "id, size, chunks, created_at, revived";
  for await (const row of keysetScan<PackRow>(q, { table: "packs", columns, key: "id", store })) {
    const rec: PackRecord = { size: Number(row.size), chunks: row.chunks, createdAt: row.created_at };
    if (row.revived !== null) rec.revived = Number(row.revived);
    yield { id: row.id, rec };
  }
}

export async function hasPack(q: Sql, store: string, id: Buffer): Promise<boolean> {
  const r = await q.query("SELECT 1 FROM packs WHERE store = $1 AND id = $2", [store, id]);
  return r.rows.length > 0;
}

interface TrashRow extends QueryResultRow {
  name: string;
  at: string | null;
  after: string;
  size: string;
  seq: string | null;
}

/** A trash row as the entry LMDB would keep: `at` and `seq` only where they were recorded. */
export function trashEntry(row: TrashRow): TrashEntry {
  const entry: TrashEntry = { after: Number(row.after), size: Number(row.size) };
  const at = num(row.at);
  const seq = num(row.seq);
  if (at !== undefined) entry.at = at;
  if (seq !== undefined) entry.seq = seq;
  return entry;
}

export async function* scanTrash(q: Sql, store: string): AsyncIterable<{ name: string; entry: TrashEntry }> {
  const columns = "name, at, after, size, seq";
  for await (const row of keysetScan<TrashRow>(q, { table: "trash", columns, key: "name", store }))
    yield { name: row.name, entry: trashEntry(row) };
}

export async function inTrash(q: Sql, store: string, name: string): Promise<boolean> {
  const r = await q.query("SELECT 1 FROM trash WHERE store = $1 AND name = $2", [store, name]);
  return r.rows.length > 0;
}

/** As LMDB's `wanted` (store-ops.ts): a pack recorded, a manifest whose object this store holds. */
export async function wants(q: Sql, store: string, name: string): Promise<boolean> {
  const pack = packIdFromName(name);
  if (pack) return hasPack(q, store, Buffer.from(pack, "hex"));
  const manifest = manifestIdFromName(name);
  if (manifest) {
    const r = await q.query<{ held: boolean }>(
      "SELECT COALESCE((record->'stores'->>$2)::numeric, 0) > 0 AS held FROM objects WHERE id = $1",
      [Buffer.from(manifest, "hex"), store],
    );
    return r.rows[0]?.held === true;
  }
  return true; // not the collection's (the store's format record, anything else)
}
