/**
 * Leases and the sequence number in LMDB. A lease is alive while `until` is ahead and, when
 * its holder is on this host, its process still runs: a process killed mid-write holds back
 * nothing on its own machine, and elsewhere for at most its time to live.
 */
import { hostname } from "node:os";
import type { LeaseRecord } from "../catalog.js";
import type { Tables } from "./tables.js";

const HOST = hostname();

/** Takes the next sequence number (inside a write transaction). */
export function nextSeq(t: Tables): number {
  const seq = ((t.meta.get("seq") as number | undefined) ?? 0) + 1;
  t.meta.putSync("seq", seq);
  return seq;
}

export function beginLease(t: Tables, what: string, ttlMs: number): LeaseRecord {
  const seq = nextSeq(t);
  const now = Date.now();
  const lease: LeaseRecord = {
    id: seq,
    holder: { host: HOST, pid: process.pid, what },
    seq,
    since: now,
    until: now + ttlMs,
  };
  t.leases.putSync(lease.id, lease);
  return lease;
}

export function isAlive(l: LeaseRecord, now: number): boolean {
  if (l.until <= now) return false;
  if (l.holder.host !== HOST || l.holder.pid === process.pid) return true;
  try {
    process.kill(l.holder.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // alive, another user's
  }
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
