/**
 * A unit of work's tx that refuses use once its unit has ended: a stray call through it (an
 * un-awaited promise, a callback kept) would otherwise write outside any transaction.
 */
import type { CatalogTx } from "./catalog.js";

export async function withGuardedTx<T>(tx: CatalogTx, fn: (tx: CatalogTx) => Promise<T>): Promise<T> {
  let open = true;
  const guarded = new Proxy(tx, {
    get: (target, prop, receiver) => {
      if (!open) throw new Error("a unit of work's tx was used after the unit ended");
      return Reflect.get(target, prop, receiver);
    },
  });
  try {
    return await fn(guarded);
  } finally {
    open = false;
  }
}
