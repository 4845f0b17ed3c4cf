/**
 * Leases and the sequence number in PostgreSQL. The sequence is a row of `meta` updated in the
 * unit of work that takes a number, so numbers follow the order units of work commit in (a
 * SEQUENCE would not: its numbers are taken outside transactions).
 *
 * A lease is alive by the same rule as in LMDB (../lease-life.ts): a lease held on another node
 * dies only by `until`, as this node cannot see that node's processes.
 */
import type { LeaseRecord } from "../catalog.js";
import { isAlive, newLease } from "../lease-life.js";
import type { Sql } from "./sql.js";

/** The lease `id` if it is alive at `now` (a commit checks its write's lease with this). */
export async function getLive(q: Sql, id: number, now: number): Promise<LeaseRecord | undefined> {
  const r = await q.query<{ record: LeaseRecord }>("SELECT record FROM leases WHERE id = $1", [id]);
  const l = r.rows[0]?.record;
  return l && isAlive(l, now) ? l : undefined;
}

/** Takes the next sequence number, inside the caller's transaction. */
export async function nextSeq(q: Sql): Promise<number> {
  // Concurrent takers write the same row: SERIALIZABLE makes all but one retry, so no two
  // committed units of work share a number, and a later commit never holds a smaller one.
  const r = await q.query<{ value: number }>(
    `INSERT INTO meta (key, value) VALUES ('seq', '1'::jsonb)
     ON CONFLICT (key) DO UPDATE SET value = to_jsonb((meta.value)::bigint + 1)
     RETURNING value`,
  );
  return Number(r.rows[0]?.value);
}

/** Raises the sequence number to at least `seq`, inside the caller's transaction. */
export async function raiseSeq(q: Sql, seq: number): Promise<void> {
  await q.query(
    `INSERT INTO meta (key, value) VALUES ('seq', to_jsonb($1::bigint))
     ON CONFLICT (key) DO UPDATE SET value = to_jsonb(GREATEST((meta.value)::bigint, $1::bigint))`,
    [seq],
  );
}

export async function beginLease(q: Sql, what: string, ttlMs: number, node?: string): Promise<LeaseRecord> {
  const seq = await nextSeq(q);
  const lease = newLease(seq, what, ttlMs, node);
  await q.query("INSERT INTO leases (id, record) VALUES ($1, $2)", [lease.id, JSON.stringify(lease)]);
  return lease;
}

export async function renewLease(q: Sql, id: number, ttlMs: number): Promise<boolean> {
  const now = Date.now();
  const l = await getLive(q, id, now);
  if (!l) {
    // A lapsed lease never lives again: its record goes, so no later renewal can find it.
    await q.query("DELETE FROM leases WHERE id = $1", [id]);
    return false;
  }
  const renewed: LeaseRecord = { ...l, until: Math.max(l.until, now + ttlMs) };
  await q.query("UPDATE leases SET record = $2 WHERE id = $1", [id, JSON.stringify(renewed)]);
  return true;
}

export async function endLease(q: Sql, id: number): Promise<void> {
  await q.query("DELETE FROM leases WHERE id = $1", [id]);
}

export async function liveLeases(q: Sql, now: number): Promise<LeaseRecord[]> {
  const r = await q.query<{ record: LeaseRecord }>("SELECT record FROM leases ORDER BY id");
  return r.rows.map((row) => row.record).filter((l) => isAlive(l, now));
}

/** Whether a lease alive at `now` began before `seq`; dead ones are swept on the way. */
export async function leasesBefore(q: Sql, seq: number, now: number): Promise<boolean> {
  const r = await q.query<{ record: LeaseRecord }>("SELECT record FROM leases ORDER BY id");
  let any = false;
  const dead: number[] = [];
  for (const { record: l } of r.rows) {
    if (!isAlive(l, now)) dead.push(l.id);
    else if (l.seq < seq) any = true;
  }
  if (dead.length > 0) await q.query("DELETE FROM leases WHERE id = ANY($1::bigint[])", [dead]);
  return any;
}
