/** Leases and the sequence number in LMDB; when a lease is alive: ../lease-life.ts. */
import type { LeaseRecord } from "../catalog.js";
import { isAlive, newLease } from "../lease-life.js";
import type { Tables } from "./tables.js";

/** Takes the next sequence number (inside a write transaction). */
export function nextSeq(t: Tables): number {
  const seq = ((t.meta.get("seq") as number | undefined) ?? 0) + 1;
  t.meta.putSync("seq", seq);
  return seq;
}

export function beginLease(t: Tables, what: string, ttlMs: number, node?: string): LeaseRecord {
  const seq = nextSeq(t);
  const lease = newLease(seq, what, ttlMs, node);
  t.leases.putSync(lease.id, lease);
  return lease;
}

export function getLive(t: Tables, id: number, now: number): LeaseRecord | undefined {
  const l = t.leases.get(id) as LeaseRecord | undefined;
  return l && isAlive(l, now) ? l : undefined;
}

export function renewLease(t: Tables, id: number, ttlMs: number): boolean {
  const now = Date.now();
  const l = getLive(t, id, now);
  if (!l) {
    t.leases.removeSync(id);
    return false;
  }
  t.leases.putSync(id, { ...l, until: Math.max(l.until, now + ttlMs) });
  return true;
}

export function liveLeases(t: Tables, now: number): LeaseRecord[] {
  const out: LeaseRecord[] = [];
  for (const { value } of t.leases.getRange())
    if (isAlive(value as LeaseRecord, now)) out.push(value as LeaseRecord);
  return out;
}

/** Whether a lease alive at `now` began before `seq`; dead ones are swept on the way. */
export function leasesBefore(t: Tables, seq: number, now: number): boolean {
  let any = false;
  for (const { key, value } of t.leases.getRange()) {
    const l = value as LeaseRecord;
    if (!isAlive(l, now)) t.leases.removeSync(key);
    else if (l.seq < seq) any = true;
  }
  return any;
}
