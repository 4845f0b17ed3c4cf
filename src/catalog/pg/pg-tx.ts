/**
 * A unit of work of the PostgreSQL catalog: every CatalogTx method, on the one client whose
 * transaction the unit runs in (pg-catalog.ts begins, commits and retries it).
 */
import type { CatalogTx } from "../catalog.js";
import * as gc from "./gc.js";
import * as leases from "./leases.js";
import { namespaces, resourceTypes } from "./metadef-records.js";
import * as objects from "./objects.js";
import { recordsOn } from "./pg-records.js";
import { rebuildStore } from "./rebuild.js";
import * as records from "./records.js";
import type { Sql } from "./sql.js";

export function unitOfWork(q: Sql): CatalogTx {
  const tx: CatalogTx = {
    ...recordsOn(q),
    putImage: (rec, prev) => records.putImage(q, rec, prev),
    removeImage: (rec) => records.removeImage(q, rec),
    putMember: (m) => records.putMember(q, m),
    removeMember: (imageId, project) => records.removeMember(q, imageId, project),
    putTask: (t) => records.putTask(q, t),
    removeTask: (t) => records.removeTask(q, t),
    putNamespace: (ns) => namespaces.put(q, ns.namespace, ns),
    removeNamespace: (name) => namespaces.remove(q, name),
    putResourceType: (rt) => resourceTypes.put(q, rt.name, rt),
    removeResourceType: (name) => resourceTypes.remove(q, name),
    getObject: (id) => objects.getObject(q, id),
    getManifest: (id) => objects.getManifest(q, id),
    getMeta: (key) => getMeta(q, key),
    setMeta: (key, value) => setMeta(q, key, value),
    commitIngest: (store, c) => objects.commitIngest(q, tx, store, c),
    commitCopy: (store, id, c) => objects.commitCopy(q, tx, store, id, c),
    releaseObject: (store, id) => objects.releaseObject(q, store, id),
    markDamaged: (id) => objects.markDamaged(q, id),
    recordPacks: (store, packs) => objects.recordPacks(q, store, packs),
    relocate: (store, lease, moves) => gc.relocate(q, store, lease, moves),
    condemn: (store, ids) => gc.condemn(q, store, ids),
    trashPacks: (store, packs, at, countedAt) => gc.trashPacks(q, store, packs, at, countedAt),
    trashOrphans: (store, objs, at) => gc.trashOrphans(q, store, objs, at),
    untrash: (store, name) => gc.untrash(q, store, name),
    claimForDeletion: (store, name, now, options) => gc.claimForDeletion(q, store, name, now, options),
    leasesBefore: (seq, now) => leases.leasesBefore(q, seq, now),
    nextSeq: () => leases.nextSeq(q),
    rebuildStore: (store, input) => rebuildStore(q, store, input),
    setRestoredHolders: (id, holders) => objects.setRestoredHolders(q, id, holders),
    raiseSeq: (seq) => leases.raiseSeq(q, seq),
  };
  return tx;
}

export async function getMeta<T>(q: Sql, key: string): Promise<T | undefined> {
  const r = await q.query<{ value: T }>("SELECT value FROM meta WHERE key = $1", [key]);
  return r.rows[0]?.value;
}

export async function setMeta(q: Sql, key: string, value: unknown): Promise<void> {
  await q.query(
    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
    [key, JSON.stringify(value)],
  );
}
