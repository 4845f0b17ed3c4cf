/**
 * Which image records a unit of work changed, told after it commits: the image service keeps
 * a copy of each image's record on the stores holding its data (images/record-objects.ts),
 * and must hear of every change, whoever made it (its own units of work, the engine's commits
 * of uploads and copies that write the record in their hook, imports, recovery). Watching
 * the catalog's units of work is the one place that sees them all.
 *
 * Images, members and their writes are the catalog's own records: this module knows which
 * writes touch them, and nothing of what a listener does with the news.
 */
import type { Catalog, CatalogTx, StoreWrite } from "./catalog.js";
import type { ImageRecord } from "./image-records.js";

/**
 * The images a unit of work changed (records, or members), each with the stores its data or
 * staged data was in before or after: where a copy of its record may be.
 */
export type ImageChanges = Map<string, Set<string>>;

/**
 * Meta key set on a catalog restored from a backup: its sequence number is the snapshot's, while
 * the stores may hold image records numbered after it. The image service's first start numbers
 * its saves above them (images/record-restore.ts), then clears it.
 */
export const RECORDS_TO_RENUMBER = "recordsToRenumber";

/**
 * Runs after a unit of work that changed images has committed, before `transact` resolves (so
 * the caller's request waits for it). It must not throw: the commit stands whatever it does.
 */
export type ChangeListener = (changes: ImageChanges) => Promise<void>;

export interface WatchedCatalog extends Catalog {
  /** Tells `listener` of every later committed change of images through this catalog. */
  afterImageChanges(listener: ChangeListener): void;
}

/** `catalog`, its units of work watched for changes of images. */
export function watchImageChanges(catalog: Catalog): WatchedCatalog {
  const listeners: ChangeListener[] = [];
  const transact: Catalog["transact"] = async (fn, options) => {
    let changes: ImageChanges = new Map();
    const out = await catalog.transact((tx) => {
      // A unit of work retried starts again: only the run that committed counts.
      changes = new Map();
      return fn(noting(tx, changes));
    }, options);
    if (changes.size > 0) for (const l of listeners) await l(changes);
    return out;
  };
  const afterImageChanges = (l: ChangeListener) => {
    listeners.push(l);
  };
  return new Proxy(catalog, {
    get(target, key) {
      if (key === "transact") return transact;
      if (key === "afterImageChanges") return afterImageChanges;
      const v = Reflect.get(target, key, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  }) as WatchedCatalog;
}

/** `tx`, noting in `changes` the images its record and member writes touch. */
function noting(tx: CatalogTx, changes: ImageChanges): CatalogTx {
  const note = (id: string, ...recs: (ImageRecord | undefined)[]) => {
    const stores = changes.get(id) ?? new Set<string>();
    for (const r of recs) {
      for (const s of r?.stores ?? []) stores.add(s);
      if (r?.staged) stores.add(r.staged.store);
    }
    changes.set(id, stores);
  };
  const wrapped: Partial<CatalogTx> = {
    putImage: async (rec, prev) => {
      await tx.putImage(rec, prev);
      note(rec.id, rec, prev);
    },
    removeImage: async (rec) => {
      await tx.removeImage(rec);
      note(rec.id, rec);
    },
    putMember: async (m) => {
      await tx.putMember(m);
      note(m.image_id);
    },
    removeMember: async (imageId, project) => {
      await tx.removeMember(imageId, project);
      note(imageId);
    },
    // The commit's hook writes the image record with the tx it is given: this one.
    commitIngest: (store, c) => tx.commitIngest(store, { ...c, alsoInTransaction: hooked(c) }),
    commitCopy: (store, id, c) => tx.commitCopy(store, id, { ...c, alsoInTransaction: hooked(c) }),
  };
  const hooked = (c: StoreWrite) => {
    const hook = c.alsoInTransaction;
    return hook && (() => hook(self));
  };
  const self: CatalogTx = new Proxy(tx, {
    get(target, key) {
      const own = wrapped[key as keyof CatalogTx];
      if (own) return own;
      const v = Reflect.get(target, key, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return self;
}
