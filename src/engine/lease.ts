/**
 * A write's lease (catalog.ts, the GC rule): taken before the write looks anything up,
 * renewed while it runs, ended when it ends. Whatever the write found indexed or put on a
 * backend outlives it, whichever process collects garbage meanwhile.
 */
import type { Catalog } from "../catalog/catalog.js";

/** How long a lease lives unless renewed; renewed every quarter of it. */
export const DEFAULT_LEASE_MS = 5 * 60 * 1000;

/**
 * Runs `fn` under a new lease (its id given to `fn`, for the commit to check). A renewal the
 * catalog refuses (the lease lapsed) is not retried: the commit then fails, as it must.
 */
export async function withLease<T>(
  catalog: Catalog,
  what: string,
  ttlMs: number,
  fn: (lease: number) => Promise<T>,
): Promise<T> {
  const lease = await catalog.beginLease(what, ttlMs);
  let lapsed = false;
  const timer = setInterval(
    () => {
      if (lapsed) return;
      catalog.renewLease(lease.id, ttlMs).then(
        (alive) => {
          lapsed = !alive;
        },
        () => {}, // the catalog is unreachable for now: the next renewal tries again
      );
    },
    Math.max(250, ttlMs / 4),
  );
  timer.unref();
  try {
    return await fn(lease.id);
  } finally {
    clearInterval(timer);
    // The catalog unreachable now (a database restarting): ended once it is back, rather than
    // left to lapse by itself, holding back every collection's deletions meanwhile.
    const end = () => catalog.endLease(lease.id);
    await end().catch(() => retryInBackground(end, ttlMs));
  }
}

/**
 * Runs `fn` again every second until it resolves or `ms` have passed: what must happen once
 * the catalog is back, without holding up the caller (whose client is told at once).
 */
export function retryInBackground(fn: () => Promise<unknown>, ms: number): void {
  const deadline = Date.now() + ms;
  const again = () => {
    if (Date.now() > deadline) return;
    setTimeout(() => {
      fn().catch(again);
    }, 1000).unref();
  };
  again();
}
