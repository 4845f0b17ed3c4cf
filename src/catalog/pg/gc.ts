/**
 * Garbage collection's units of work in PostgreSQL (catalog.ts, the GC rule): condemning
 * unreferenced chunks, trashing packs and orphans, claiming trash for deletion, and moving
 * chunks (repack, repair). Each batch is one statement over arrays (unnest), whatever its
 * size: a collection condemns and moves thousands of chunks at a time, and a round trip per
 * chunk would hold its transaction open, and its conflicts with commits, that much longer.
 * The rules are LMDB's (lmdb/store-ops.ts, lmdb/lmdb-tx.ts), which these mirror.
 */
import { LeaseLostError } from "../../errors.js";
import { manifestIdFromName, packIdFromName } from "../../store/names.js";
import { CHUNK_FLAG_SUM } from "../../store/pack-format.js";
import type { ChunkMove } from "../catalog.js";
import { type TrashEntry, trashDue } from "../store-index.js";
import { getLive, leasesBefore, nextSeq } from "./leases.js";
import { num, type Sql, toI64 } from "./sql.js";

/** The lease a write held must still be alive when it commits: else GC may have taken its data. */
async function checkLease(q: Sql, lease: number): Promise<void> {
  if (!(await getLive(q, lease, Date.now()))) {
    throw new LeaseLostError("the write's lease lapsed before its commit (see docs/format.md, the GC rule)");
  }
}

export async function condemn(
  q: Sql,
  store: string,
  ids: readonly Buffer[],
): Promise<{ condemned: number; bytes: number }> {
  const seq = await nextSeq(q);
  // A chunk condemned before from another pack (then written again) has its entry replaced:
  // it is where the index last had it that a revival must find it.
  const r = await q.query<{ n: number; bytes: string }>(
    `WITH ids AS (SELECT DISTINCT id FROM unnest($2::bytea[]) AS u(id)),
     gone AS (
       DELETE FROM chunks c USING ids
       WHERE c.store = $1 AND c.id = ids.id AND c.refs = 0
       RETURNING c.id, c.pack, c.pos, c.length, c.flags, c.sum),
     kept AS (
       INSERT INTO condemned (store, id, pack, pos, length, flags, seq, sum)
       SELECT $1::text, id, pack, pos, length, flags, $3::bigint, sum FROM gone
       ON CONFLICT (store, id) DO UPDATE SET pack = EXCLUDED.pack, pos = EXCLUDED.pos,
         length = EXCLUDED.length, flags = EXCLUDED.flags, seq = EXCLUDED.seq, sum = EXCLUDED.sum)
     SELECT count(*)::int AS n, COALESCE(sum(length), 0)::bigint AS bytes FROM gone`,
    [store, ids, seq],
  );
  const row = r.rows[0];
  return { condemned: row?.n ?? 0, bytes: num(row?.bytes) ?? 0 };
}

/**
 * Trashes packs a collection found without a live chunk (their records go), except those a
 * commit revived a chunk in after `countedAt`. Returns how many went.
 */
export async function trashPacks(
  q: Sql,
  store: string,
  packs: readonly { name: string; size: number }[],
  at: number,
  countedAt: number,
): Promise<number> {
  const seq = await nextSeq(q);
  const ids: Buffer[] = [];
  const names: string[] = [];
  const sizes: number[] = [];
  for (const p of packs) {
    const hex = packIdFromName(p.name);
    if (!hex) continue; // not a pack's name: no pack record can be its
    ids.push(Buffer.from(hex, "hex"));
    names.push(p.name);
    sizes.push(p.size);
  }
  if (ids.length === 0) return 0;
  // A pack listed twice goes once, with its first size (the second finds no record left).
  const r = await q.query(
    `WITH input AS (
       SELECT DISTINCT ON (id) id, name, size
       FROM unnest($2::bytea[], $3::text[], $4::bigint[]) WITH ORDINALITY AS u(id, name, size, i)
       ORDER BY id, i),
     gone AS (
       DELETE FROM packs p USING input
       WHERE p.store = $1 AND p.id = input.id AND COALESCE(p.revived, 0) <= $5::bigint
       RETURNING p.id)
     INSERT INTO trash (store, name, at, after, size, seq)
     SELECT $1::text, input.name, $6::bigint, $6::bigint, input.size, $7::bigint FROM input JOIN gone USING (id)
     ON CONFLICT (store, name) DO UPDATE SET at = EXCLUDED.at, after = EXCLUDED.after,
       size = EXCLUDED.size, seq = EXCLUDED.seq`,
    [store, ids, names, sizes, countedAt, at, seq],
  );
  return r.rowCount ?? 0;
}

/**
 * Trashes objects a collection found on the backend and not in the catalog, except those a
 * commit has recorded since (the listing raced it) and those already in the trash (their
 * stamp stays: it is when they went). Returns how many went.
 */
export async function trashOrphans(
  q: Sql,
  store: string,
  objects: readonly { name: string; size: number }[],
  at: number,
): Promise<number> {
  const seq = await nextSeq(q);
  if (objects.length === 0) return 0;
  const names = objects.map((o) => o.name);
  const want = await wanted(q, store, names);
  const orphans = objects.filter((_, i) => !want[i]);
  if (orphans.length === 0) return 0;
  const r = await q.query(
    `INSERT INTO trash (store, name, at, after, size, seq)
     SELECT DISTINCT ON (name) $1::text, name, $4::bigint, $4::bigint, size, $5::bigint
     FROM unnest($2::text[], $3::bigint[]) WITH ORDINALITY AS u(name, size, i)
     ORDER BY name, i
     ON CONFLICT (store, name) DO NOTHING`,
    [store, orphans.map((o) => o.name), orphans.map((o) => o.size), at, seq],
  );
  return r.rowCount ?? 0;
}

export async function untrash(q: Sql, store: string, name: string): Promise<void> {
  await q.query("DELETE FROM trash WHERE store = $1 AND name = $2", [store, name]);
}

export async function claimForDeletion(
  q: Sql,
  store: string,
  name: string,
  now: number,
  options?: { graceMs?: number; ignoreLeases?: boolean },
): Promise<TrashEntry | undefined> {
  const r = await q.query<{ at: string | null; after: string; size: string; seq: string | null }>(
    "SELECT at, after, size, seq FROM trash WHERE store = $1 AND name = $2",
    [store, name],
  );
  const row = r.rows[0];
  if (!row) return undefined;
  const entry: TrashEntry = { after: num(row.after) ?? 0, size: num(row.size) ?? 0 };
  if (row.at !== null) entry.at = num(row.at);
  if (row.seq !== null) entry.seq = num(row.seq);
  // Wanted again since the collection looked (a commit recorded the pack, or holds the
  // manifest's object here again): it leaves the trash instead.
  if ((await wanted(q, store, [name]))[0]) {
    await untrash(q, store, name);
    return undefined;
  }
  if (options?.graceMs !== undefined && !trashDue(entry, options.graceMs, now)) return undefined;
  if (!options?.ignoreLeases && (await leasesBefore(q, entry.seq ?? 0, now))) return undefined;
  await untrash(q, store, name);
  // Its condemned chunks go with it: once the pack is deleted nothing can revive them.
  const pack = packIdFromName(name);
  if (pack) {
    await q.query("DELETE FROM condemned WHERE store = $1 AND pack = $2", [store, Buffer.from(pack, "hex")]);
  }
  return entry;
}

/**
 * Applies each move that still holds (ChunkMove), in order; answers, per move, whether it held.
 * Moves of distinct chunks do not interact, so each round applies at once one move of every
 * chunk listed: the k-th move of a chunk runs in round k, after its earlier ones, as in order.
 */
export async function relocate(
  q: Sql,
  store: string,
  lease: number,
  moves: readonly ChunkMove[],
): Promise<boolean[]> {
  await checkLease(q, lease);
  const answers: boolean[] = new Array(moves.length).fill(false);
  const rounds: number[][] = [];
  const seen = new Map<string, number>();
  moves.forEach((m, i) => {
    const hex = m.id.toString("hex");
    const k = seen.get(hex) ?? 0;
    seen.set(hex, k + 1);
    const round = rounds[k];
    if (round) round.push(i);
    else rounds[k] = [i];
  });
  for (const round of rounds) {
    const held = await relocateRound(
      q,
      store,
      round.map((i) => moves[i] as ChunkMove),
    );
    round.forEach((i, j) => {
      answers[i] = held[j] as boolean;
    });
  }
  return answers;
}

/** One round of relocate: moves of distinct chunks, applied in one statement. */
async function relocateRound(q: Sql, store: string, moves: readonly ChunkMove[]): Promise<boolean[]> {
  // Like LMDB's record encoding, a stored flag CHUNK_FLAG_SUM says exactly whether there is a sum.
  const flags = (m: ChunkMove) =>
    m.to ? (m.to.sum === undefined ? m.to.flags & ~CHUNK_FLAG_SUM : m.to.flags | CHUNK_FLAG_SUM) : null;
  const r = await q.query<{ i: string; holds: boolean }>(
    `WITH m AS (
       SELECT * FROM unnest($2::bytea[], $3::bytea[], $4::bigint[], $5::bytea[], $6::bigint[],
         $7::integer[], $8::integer[], $9::bigint[], $10::integer[])
         WITH ORDINALITY AS u(id, from_pack, from_pos, to_pack, to_pos, to_length, to_flags, to_sum, refs, i)),
     cur AS (
       SELECT m.*, c.refs AS cur_refs,
         CASE WHEN m.from_pack IS NOT NULL
           THEN c.id IS NOT NULL AND c.pack = m.from_pack AND c.pos = m.from_pos
           ELSE c.id IS NULL END AS holds
       FROM m LEFT JOIN chunks c ON c.store = $1 AND c.id = m.id),
     moved AS (
       INSERT INTO chunks (store, id, pack, pos, length, flags, refs, sum)
       SELECT $1::text, id, to_pack, to_pos, to_length, to_flags, COALESCE(cur_refs, refs, 0), to_sum
       FROM cur WHERE holds AND to_pack IS NOT NULL
       ON CONFLICT (store, id) DO UPDATE SET pack = EXCLUDED.pack, pos = EXCLUDED.pos,
         length = EXCLUDED.length, flags = EXCLUDED.flags, refs = EXCLUDED.refs, sum = EXCLUDED.sum)
     SELECT i, COALESCE(holds, false) AS holds FROM cur ORDER BY i`,
    [
      store,
      moves.map((m) => m.id),
      moves.map((m) => m.from?.pack ?? null),
      moves.map((m) => m.from?.offset ?? null),
      moves.map((m) => m.to?.pack ?? null),
      moves.map((m) => m.to?.offset ?? null),
      moves.map((m) => m.to?.length ?? null),
      moves.map(flags),
      moves.map((m) => (m.to ? toI64(m.to.sum) : null)),
      moves.map((m) => m.refs ?? null),
    ],
  );
  return r.rows.map((row) => row.holds);
}

/**
 * Per name, whether the catalog needs object `name` of `store`: a pack it records, a manifest
 * whose object it holds there; anything else (the store's format record) is not GC's to take.
 */
async function wanted(q: Sql, store: string, names: readonly string[]): Promise<boolean[]> {
  const packIds: Buffer[] = [];
  const manifestIds: Buffer[] = [];
  const kinds = names.map((name) => {
    const pack = packIdFromName(name);
    if (pack) {
      packIds.push(Buffer.from(pack, "hex"));
      return { pack };
    }
    const manifest = manifestIdFromName(name);
    if (manifest) {
      manifestIds.push(Buffer.from(manifest, "hex"));
      return { manifest };
    }
    return {};
  });
  const packs = new Set<string>();
  if (packIds.length > 0) {
    const r = await q.query<{ id: Buffer }>(
      "SELECT id FROM packs WHERE store = $1 AND id = ANY($2::bytea[])",
      [store, packIds],
    );
    for (const row of r.rows) packs.add(row.id.toString("hex"));
  }
  const held = new Set<string>();
  if (manifestIds.length > 0) {
    const r = await q.query<{ id: Buffer }>(
      `SELECT id FROM objects
       WHERE id = ANY($2::bytea[]) AND COALESCE((record->'stores'->>$1::text)::numeric, 0) > 0`,
      [store, manifestIds],
    );
    for (const row of r.rows) held.add(row.id.toString("hex"));
  }
  return kinds.map((k) => (k.pack ? packs.has(k.pack) : k.manifest ? held.has(k.manifest) : true));
}
