/**
 * Objects, manifests and the commit points in PostgreSQL: an ingest's or a copy's records, the
 * holders of an object in each store and the references its chunks get, and their release.
 * The rules are CatalogTx's (catalog.ts), and the behaviour LMDB's (lmdb/objects.ts,
 * lmdb/store-ops.ts); a manifest's chunks are handled as whole arrays, a few statements per
 * commit however many chunks it lists.
 */
import { ChunkVanishedError, LeaseLostError } from "../../errors.js";
import { CHUNK_FLAG_SUM } from "../../store/pack-format.js";
import type { ChunkLocation } from "../../store/pack-writer.js";
import type { CatalogTx, IngestCommit, ObjectRecord, StoreHoldings, StoreWrite } from "../catalog.js";
import { decodeManifest, distinctChunkIds } from "../manifest.js";
import { idRows, keysetScan } from "./chunk-index.js";
import { getLive, nextSeq } from "./leases.js";
import { num, type Sql, toI64 } from "./sql.js";

export async function getObject(q: Sql, id: Buffer): Promise<ObjectRecord | undefined> {
  const r = await q.query<{ record: ObjectRecord }>("SELECT record FROM objects WHERE id = $1", [id]);
  return r.rows[0]?.record;
}

export async function getManifest(q: Sql, id: Buffer): Promise<Buffer | undefined> {
  const r = await q.query<{ bytes: Buffer }>("SELECT bytes FROM manifests WHERE id = $1", [id]);
  return r.rows[0]?.bytes;
}

export async function* scanObjects(q: Sql): AsyncIterable<{ id: Buffer; obj: ObjectRecord }> {
  const from = { table: "objects", columns: "id, record", key: "id" };
  for await (const row of keysetScan<{ id: Buffer; record: ObjectRecord }>(q, from))
    yield { id: row.id, obj: row.record };
}

export async function holdingsByStore(q: Sql): Promise<Map<string, StoreHoldings>> {
  const r = await q.query<{ store: string; objects: string; holders: string; bytes: string }>(
    `SELECT s.store, count(*) AS objects, sum(s.n::numeric) AS holders,
            sum(s.n::numeric * (o.record->>'size')::numeric) AS bytes
       FROM objects o CROSS JOIN LATERAL jsonb_each_text(o.record->'stores') AS s(store, n)
      GROUP BY s.store ORDER BY s.store COLLATE "C"`,
  );
  const out = new Map<string, StoreHoldings>();
  for (const row of r.rows)
    out.set(row.store, {
      objects: num(row.objects) ?? 0,
      holders: num(row.holders) ?? 0,
      logicalBytes: num(row.bytes) ?? 0,
    });
  return out;
}

/** The lease a write held must still be alive when it commits: else GC may have taken its data. */
async function checkLease(q: Sql, lease: number): Promise<void> {
  if (!(await getLive(q, lease, Date.now()))) {
    throw new LeaseLostError("the write's lease lapsed before its commit (see docs/format.md, the GC rule)");
  }
}

/** The record without the `restored` mark: holders changed on purpose are no guess any more. */
function settled(obj: ObjectRecord): ObjectRecord {
  const { restored: _, ...rest } = obj;
  return rest;
}

async function putObject(q: Sql, id: Buffer, obj: ObjectRecord): Promise<void> {
  await q.query(
    "INSERT INTO objects (id, record) VALUES ($1, $2::jsonb) ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
    [id, JSON.stringify(obj)],
  );
}

interface Holding {
  obj: ObjectRecord;
  hasManifest: boolean;
  /** The manifest, read only when `store` had exactly `manifestAt` holders. */
  manifest?: Buffer;
}

/**
 * An object record and its manifest in one round trip. The manifest's bytes come only when
 * the caller will walk its chunks (`store` holding it `manifestAt` times): a large image's
 * manifest is tens of megabytes, and most commits and releases do not need it.
 */
async function holding(q: Sql, id: Buffer, store: string, manifestAt: number): Promise<Holding | undefined> {
  const r = await q.query<{ record: ObjectRecord; has_manifest: boolean; bytes: Buffer | null }>(
    `SELECT o.record, m.id IS NOT NULL AS has_manifest,
            CASE WHEN COALESCE((o.record->'stores'->>$2)::numeric, 0) = $3 THEN m.bytes END AS bytes
       FROM objects o LEFT JOIN manifests m ON m.id = o.id WHERE o.id = $1`,
    [id, store, manifestAt],
  );
  const row = r.rows[0];
  if (!row) return undefined;
  const h: Holding = { obj: row.record, hasManifest: row.has_manifest };
  if (row.bytes !== null) h.manifest = row.bytes;
  return h;
}

/** `tx`: the unit of work's own tx, for `c.alsoInTransaction`. */
export async function commitIngest(
  q: Sql,
  tx: CatalogTx,
  store: string,
  c: IngestCommit,
): Promise<{ created: boolean }> {
  await checkLease(q, c.lease);
  const existing = await holding(q, c.manifestId, store, 0);
  let obj: ObjectRecord;
  let manifest: Buffer | undefined;
  if (existing) {
    if (!existing.hasManifest) throw new ChunkVanishedError(`manifest ${c.manifestId.toString("hex")}`);
    // A second upload may carry digests the first did not compute.
    obj = { ...existing.obj, hashes: { ...c.object.hashes, ...existing.obj.hashes } };
    manifest = existing.manifest;
  } else {
    await q.query(
      "INSERT INTO manifests (id, bytes) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET bytes = EXCLUDED.bytes",
      [c.manifestId, c.manifest],
    );
    obj = { ...c.object, stores: {}, createdAt: new Date().toISOString() };
    manifest = c.manifest;
  }
  await holdInStore(q, store, c.manifestId, c, obj, manifest);
  await c.alsoInTransaction?.(tx);
  return { created: !existing };
}

export async function commitCopy(
  q: Sql,
  tx: CatalogTx,
  store: string,
  manifestId: Buffer,
  c: StoreWrite,
): Promise<void> {
  await checkLease(q, c.lease);
  const h = await holding(q, manifestId, store, 0);
  if (!h?.hasManifest) throw new ChunkVanishedError(`manifest ${manifestId.toString("hex")}`);
  await holdInStore(q, store, manifestId, c, h.obj, h.manifest);
  await c.alsoInTransaction?.(tx);
}

/**
 * Records the packs written to `store` and adds a holder of the object there; the first
 * holder in a store adds a reference there to each distinct chunk of the manifest.
 * `manifest` is needed only for that first holder.
 */
async function holdInStore(
  q: Sql,
  store: string,
  manifestId: Buffer,
  c: StoreWrite,
  obj: ObjectRecord,
  manifest: Buffer | undefined,
): Promise<void> {
  await recordPacks(q, store, c.packs);
  const held = obj.stores[store] ?? 0;
  // Held there already: the chunks are referenced, and whatever this write stored duplicates
  // indexed ones (garbage for GC).
  if (held === 0) {
    if (!manifest) throw new ChunkVanishedError(`manifest ${manifestId.toString("hex")}`);
    await addReferences(q, store, distinctChunkIds(decodeManifest(manifest)), c.written);
  }
  await putObject(q, manifestId, { ...settled(obj), stores: { ...obj.stores, [store]: held + 1 } });
}

/**
 * One reference more in `store` for each of `ids` (distinct, by hex, in manifest order), as
 * LMDB's addReference does one at a time: an indexed chunk gains one; else the copy this
 * write made (`written`) is indexed; else a condemned one is revived with its pack (out of
 * the trash if it went there). Anything else is gone: ChunkVanishedError.
 */
async function addReferences(
  q: Sql,
  store: string,
  ids: ReadonlyMap<string, Buffer>,
  written: ReadonlyMap<string, ChunkLocation>,
): Promise<void> {
  if (ids.size === 0) return;
  const list = [...ids];
  const u = idRows(
    list.map(([, id]) => id),
    2,
  );
  const bumped = await q.query<{ i: number }>(
    `UPDATE chunks c SET refs = c.refs + 1 FROM ${u.from} AS u WHERE c.store = $1 AND c.id = u.id RETURNING u.i`,
    [store, u.value],
  );
  const indexed = new Set(bumped.rows.map((r) => r.i));
  const fresh: { id: Buffer; loc: ChunkLocation }[] = [];
  const dead: { hex: string; id: Buffer }[] = [];
  list.forEach(([hex, id], i) => {
    if (indexed.has(i)) return;
    const loc = written.get(hex);
    if (loc) fresh.push({ id, loc });
    else dead.push({ hex, id });
  });
  if (dead.length > 0) await revive(q, store, dead);
  if (fresh.length > 0) await indexWritten(q, store, fresh);
}

/** The chunks this write stored, indexed with their first reference. */
async function indexWritten(
  q: Sql,
  store: string,
  fresh: { id: Buffer; loc: ChunkLocation }[],
): Promise<void> {
  // Each pack once, and per chunk its number (1-based, as SQL arrays): a pack holds thousands.
  const packs = new Map<string, { id: Buffer; n: number }>();
  const packOf = (pack: Buffer): number => {
    const hex = pack.toString("hex");
    const known = packs.get(hex);
    if (known) return known.n;
    const n = packs.size + 1;
    packs.set(hex, { id: pack, n });
    return n;
  };
  const u = idRows(
    fresh.map((f) => f.id),
    2,
  );
  const packNumbers = fresh.map((f) => packOf(f.loc.pack));
  await q.query(
    `INSERT INTO chunks (store, id, pack, pos, length, flags, refs, sum)
     SELECT $1, u.id, ($3::bytea[])[l.pack], l.pos, l.length, l.flags, 1, l.sum
       FROM ${u.from} AS u
       JOIN unnest($4::integer[], $5::bigint[], $6::integer[], $7::integer[], $8::bigint[])
              WITH ORDINALITY AS l(pack, pos, length, flags, sum, n)
         ON l.n = u.i + 1`,
    [
      store,
      u.value,
      [...packs.values()].map((p) => p.id),
      packNumbers,
      fresh.map((f) => f.loc.offset),
      fresh.map((f) => f.loc.length),
      // As LMDB's record encoding: the sum flag says exactly whether a sum is kept.
      fresh.map(({ loc }) =>
        loc.sum !== undefined ? loc.flags | CHUNK_FLAG_SUM : loc.flags & ~CHUNK_FLAG_SUM,
      ),
      fresh.map((f) => toI64(f.loc.sum)),
    ],
  );
}

/**
 * Condemned chunks back into the index where they still are, with one reference; their packs
 * live again: recorded (kept if still recorded, else from the trash entry's size), out of the
 * trash, and stamped `revived` so that a collection that counted them empty before leaves them.
 */
const revival = (batch: string): string => `
  WITH dead AS (
    DELETE FROM condemned d USING ${batch} AS u WHERE d.store = $1 AND d.id = u.id
    RETURNING u.i, d.id, d.pack, d.pos, d.length, d.flags, d.sum),
  revived AS (
    INSERT INTO chunks (store, id, pack, pos, length, flags, refs, sum)
    SELECT $1, id, pack, pos, length, flags, 1, sum FROM dead),
  -- A pack's name as store/names.ts packName() makes it (its trash entry's key).
  dead_packs AS (
    SELECT DISTINCT pack,
           'packs/' || left(encode(pack, 'hex'), 2) || '/' || encode(pack, 'hex') || '.pack' AS name
      FROM dead),
  relived AS (
    INSERT INTO packs (store, id, size, chunks, created_at, revived)
    SELECT $1, p.pack, COALESCE(t.size, 0), 0, $3, $4
      FROM dead_packs p LEFT JOIN trash t ON t.store = $1 AND t.name = p.name
    ON CONFLICT (store, id) DO UPDATE SET revived = EXCLUDED.revived),
  untrashed AS (
    DELETE FROM trash WHERE store = $1 AND name IN (SELECT name FROM dead_packs))
  SELECT i FROM dead`;

async function revive(q: Sql, store: string, dead: { hex: string; id: Buffer }[]): Promise<void> {
  // One stamp for the commit's revivals (LMDB takes one per chunk): all a collection compares
  // it with is its own `countedAt`, and a number per chunk would be a round trip per chunk.
  const seq = await nextSeq(q);
  const u = idRows(
    dead.map((d) => d.id),
    2,
  );
  const r = await q.query<{ i: number }>(revival(u.from), [store, u.value, new Date().toISOString(), seq]);
  const back = new Set(r.rows.map((row) => row.i));
  // The first gone in manifest order, as LMDB's walk would find it; the unit of work's
  // rollback undoes what this commit wrote so far.
  const gone = dead.find((_, i) => !back.has(i));
  if (gone) throw new ChunkVanishedError(gone.hex);
}

export async function releaseObject(
  q: Sql,
  store: string,
  manifestId: Buffer,
): Promise<{ removed: boolean }> {
  const h = await holding(q, manifestId, store, 1);
  const held = h?.obj.stores[store] ?? 0;
  if (!h || held === 0) return { removed: false };
  const stores = { ...h.obj.stores, [store]: held - 1 };
  if (held === 1) {
    delete stores[store];
    const ids = h.manifest ? [...distinctChunkIds(decodeManifest(h.manifest)).values()] : [];
    // A chunk at zero stays indexed, where it is, until GC condemns it.
    if (ids.length > 0) {
      const u = idRows(ids, 2);
      await q.query(
        `UPDATE chunks c SET refs = GREATEST(c.refs - 1, 0) FROM ${u.from} AS u WHERE c.store = $1 AND c.id = u.id`,
        [store, u.value],
      );
    }
  }
  if (Object.keys(stores).length > 0) {
    await putObject(q, manifestId, { ...settled(h.obj), stores });
    return { removed: false };
  }
  await q.query("WITH m AS (DELETE FROM manifests WHERE id = $1) DELETE FROM objects WHERE id = $1", [
    manifestId,
  ]);
  return { removed: true };
}

export async function setRestoredHolders(
  q: Sql,
  manifestId: Buffer,
  holders: Record<string, number>,
): Promise<boolean> {
  const obj = await getObject(q, manifestId);
  if (!obj?.restored) return false;
  const stores = { ...obj.stores };
  for (const [s, n] of Object.entries(holders)) if ((stores[s] ?? 0) > 0 && n >= 1) stores[s] = n;
  if (Object.entries(stores).every(([s, n]) => obj.stores[s] === n)) return false;
  await q.query("UPDATE objects SET record = jsonb_set(record, '{stores}', $2::jsonb) WHERE id = $1", [
    manifestId,
    JSON.stringify(stores),
  ]);
  return true;
}

export async function markDamaged(q: Sql, manifestId: Buffer): Promise<void> {
  await q.query(`UPDATE objects SET record = record || '{"damaged": true}'::jsonb WHERE id = $1`, [
    manifestId,
  ]);
}

export async function recordPacks(
  q: Sql,
  store: string,
  packs: readonly { id: Buffer; size: number; chunks: number }[],
): Promise<void> {
  if (packs.length === 0) return;
  // The last record of a pack wins, as successive puts would (and one upsert may not touch a
  // row twice). A record put afresh replaces the old one whole, `revived` included, as LMDB's.
  const byId = new Map<string, { id: Buffer; size: number; chunks: number }>();
  for (const p of packs) byId.set(p.id.toString("hex"), p);
  const list = [...byId.values()];
  await q.query(
    `INSERT INTO packs (store, id, size, chunks, created_at, revived)
     SELECT $1, u.id, u.size, u.chunks, $5, NULL
       FROM unnest($2::bytea[], $3::bigint[], $4::integer[]) AS u(id, size, chunks)
     ON CONFLICT (store, id) DO UPDATE
       SET size = EXCLUDED.size, chunks = EXCLUDED.chunks, created_at = EXCLUDED.created_at, revived = NULL`,
    [
      store,
      list.map((p) => p.id),
      list.map((p) => p.size),
      list.map((p) => p.chunks),
      new Date().toISOString(),
    ],
  );
}
