/**
 * A lease's record and when it is alive, whatever catalog keeps it: while `until` is ahead and, when its holder
 * is on this host, its process still runs. A process killed mid-write holds back nothing on its
 * own machine, and on another node's (which cannot see its processes) for at most its time to
 * live.
 */
import { hostname } from "node:os";
import type { LeaseRecord } from "./catalog.js";

const HOST = hostname();

/** The lease this process (of `node`, if given) takes at sequence number `seq` (its id too) for `ttlMs`. */
export function newLease(seq: number, what: string, ttlMs: number, node?: string): LeaseRecord {
  const now = Date.now();
  const holder = { host: HOST, pid: process.pid, what, ...(node === undefined ? {} : { node }) };
  return { id: seq, holder, seq, since: now, until: now + ttlMs };
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
