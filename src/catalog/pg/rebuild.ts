/**
 * rebuild-index's unit of work in PostgreSQL (CatalogTx.rebuildStore in catalog.ts), mirroring
 * LMDB's (lmdb/objects.ts): the store's index and packs are replaced by what its packs hold,
 * missing manifests are restored, adopted objects held there once, and every reference there
 * recounted from the manifests held in the store. A store's packs can list millions of chunks:
 * rows go in batches, each one statement over arrays, so no single query grows without bound.
 */
import { CHUNK_FLAG_SUM } from "../../store/pack-format.js";
import type { ObjectRecord, RebuildCounts, RebuildInput } from "../catalog.js";
import { decodeManifest, distinctChunkIds } from "../manifest.js";
import { type Sql, toI64 } from "./sql.js";

/** Rows per statement when writing chunks; manifests read per page when recounting. */
const BATCH = 10_000;
const MANIFEST_PAGE = 256;

export async function rebuildStore(q: Sql, store: string, input: RebuildInput): Promise<RebuildCounts> {
  const counts: RebuildCounts = { packs: 0, chunks: 0, manifests: 0, manifestsRestored: 0 };
  for (const table of ["chunks", "packs", "condemned"]) {
    await q.query(`DELETE FROM ${table} WHERE store = $1`, [store]);
  }
  counts.manifestsRestored = await restoreManifests(q, store, input.missing);
  if (input.adopted.length > 0) {
    await q.query(
      `UPDATE objects SET record = jsonb_set(record, ARRAY['stores', $1::text], '1'::jsonb)
       WHERE id = ANY($2::bytea[])`,
      [store, input.adopted],
    );
  }
  counts.packs = await writePacks(q, store, input.packs);
  counts.chunks = await writeChunks(q, store, input.packs);
  counts.manifests = await recountReferences(q, store);
  return counts;
}

/** Records the manifests the catalog lacked; an object already known keeps its record. */
async function restoreManifests(q: Sql, store: string, missing: RebuildInput["missing"]): Promise<number> {
  const createdAt = new Date().toISOString();
  for (let i = 0; i < missing.length; i += BATCH) {
    const batch = missing.slice(i, i + BATCH);
    const records = batch.map(({ bytes, hashes }) => {
      const m = decodeManifest(bytes);
      const rec: ObjectRecord = {
        size: m.size,
        chunkCount: m.count,
        hashes,
        stores: { [store]: 1 },
        createdAt,
        restored: true,
      };
      return JSON.stringify(rec);
    });
    // A manifest listed twice is the same bytes (its id is their hash): once is enough.
    await q.query(
      `INSERT INTO manifests (id, bytes)
       SELECT DISTINCT ON (id) id, bytes FROM unnest($1::bytea[], $2::bytea[]) AS u(id, bytes)
       ON CONFLICT (id) DO UPDATE SET bytes = EXCLUDED.bytes`,
      [batch.map((m) => m.id), batch.map((m) => m.bytes)],
    );
    await q.query(
      `INSERT INTO objects (id, record)
       SELECT DISTINCT ON (id) id, record::jsonb
       FROM unnest($1::bytea[], $2::text[]) WITH ORDINALITY AS u(id, record, i)
       ORDER BY id, i
       ON CONFLICT (id) DO NOTHING`,
      [batch.map((m) => m.id), records],
    );
  }
  return missing.length;
}

/** The packs' records; a pack listed twice keeps its last record, as a later put would. */
async function writePacks(q: Sql, store: string, packs: RebuildInput["packs"]): Promise<number> {
  for (let i = 0; i < packs.length; i += BATCH) {
    const batch = packs.slice(i, i + BATCH);
    await q.query(
      `INSERT INTO packs (store, id, size, chunks, created_at, revived)
       SELECT DISTINCT ON (id) $1::text, id, size, chunks, created_at, revived
       FROM unnest($2::bytea[], $3::bigint[], $4::integer[], $5::text[], $6::bigint[])
         WITH ORDINALITY AS u(id, size, chunks, created_at, revived, i)
       ORDER BY id, i DESC
       ON CONFLICT (store, id) DO UPDATE SET size = EXCLUDED.size, chunks = EXCLUDED.chunks,
         created_at = EXCLUDED.created_at, revived = EXCLUDED.revived`,
      [
        store,
        batch.map((p) => p.id),
        batch.map((p) => p.rec.size),
        batch.map((p) => p.rec.chunks),
        batch.map((p) => p.rec.createdAt),
        batch.map((p) => p.rec.revived ?? null),
      ],
    );
  }
  return packs.length;
}

/**
 * Indexes every chunk the packs hold, without references yet; a chunk in several packs stays
 * where it was first found. Returns how many were indexed.
 */
async function writeChunks(q: Sql, store: string, packs: RebuildInput["packs"]): Promise<number> {
  let indexed = 0;
  let rows: { pack: Buffer; e: RebuildInput["packs"][number]["entries"][number] }[] = [];
  const flush = async () => {
    if (rows.length === 0) return;
    // Like LMDB's record encoding, a stored flag CHUNK_FLAG_SUM says exactly whether there is a sum.
    const r = await q.query(
      `INSERT INTO chunks (store, id, pack, pos, length, flags, refs, sum)
       SELECT DISTINCT ON (id) $1::text, id, pack, pos, length, flags, 0, sum
       FROM unnest($2::bytea[], $3::bytea[], $4::bigint[], $5::integer[], $6::integer[], $7::bigint[])
         WITH ORDINALITY AS u(id, pack, pos, length, flags, sum, i)
       ORDER BY id, i
       ON CONFLICT (store, id) DO NOTHING`,
      [
        store,
        rows.map((r) => r.e.id),
        rows.map((r) => r.pack),
        rows.map((r) => r.e.offset),
        rows.map((r) => r.e.length),
        rows.map((r) => (r.e.sum === undefined ? r.e.flags & ~CHUNK_FLAG_SUM : r.e.flags | CHUNK_FLAG_SUM)),
        rows.map((r) => toI64(r.e.sum)),
      ],
    );
    indexed += r.rowCount ?? 0;
    rows = [];
  };
  for (const p of packs) {
    for (const e of p.entries) {
      rows.push({ pack: p.id, e });
      if (rows.length >= BATCH) await flush();
    }
  }
  await flush();
  return indexed;
}

/**
 * Gives each indexed chunk one reference per manifest held in the store that lists it (a
 * chunk gone is fsck's to report). Returns how many manifests the store holds.
 */
async function recountReferences(q: Sql, store: string): Promise<number> {
  let manifests = 0;
  let refs = new Map<string, { id: Buffer; n: number }>();
  const flush = async () => {
    if (refs.size === 0) return;
    const list = [...refs.values()];
    await q.query(
      `UPDATE chunks c SET refs = c.refs + u.n
       FROM unnest($2::bytea[], $3::integer[]) AS u(id, n)
       WHERE c.store = $1 AND c.id = u.id`,
      [store, list.map((r) => r.id), list.map((r) => r.n)],
    );
    refs = new Map();
  };
  let after: Buffer = Buffer.alloc(0);
  for (;;) {
    const page = await q.query<{ id: Buffer; bytes: Buffer }>(
      `SELECT o.id, m.bytes FROM objects o JOIN manifests m ON m.id = o.id
       WHERE o.id > $2 AND COALESCE((o.record->'stores'->>$1::text)::numeric, 0) > 0
       ORDER BY o.id LIMIT ${MANIFEST_PAGE}`,
      [store, after],
    );
    for (const { id, bytes } of page.rows) {
      manifests++;
      for (const [hex, chunk] of distinctChunkIds(decodeManifest(bytes))) {
        const r = refs.get(hex);
        if (r) r.n++;
        else refs.set(hex, { id: chunk, n: 1 });
      }
      after = id;
    }
    if (refs.size >= BATCH) await flush();
    if (page.rows.length < MANIFEST_PAGE) break;
  }
  await flush();
  return manifests;
}
