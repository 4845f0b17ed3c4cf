/**
 * A unit of work over the LMDB tables: CatalogTx's methods over the synchronous functions of
 * this folder, called inside one open write transaction (LmdbCatalog.transact).
 */
import { LeaseLostError } from "../../errors.js";
import type { CatalogTx, RecordsReader } from "../catalog.js";
import { type TrashEntry, trashDue } from "../store-index.js";
import { getLive, leasesBefore, nextSeq } from "./leases.js";
import {
  commitIngest,
  holdInStore,
  markDamaged,
  rebuildStore,
  releaseObject,
  setRestoredHolders,
} from "./objects.js";
import * as records from "./records.js";
import { condemn, forget, recordPacks, relocate, trashOrphans, trashPacks, wanted } from "./store-ops.js";
import type { Tables } from "./tables.js";

/** The lease a write held must still be alive when it commits: else GC may have taken its data. */
function checkLease(t: Tables, lease: number): void {
  if (!getLive(t, lease, Date.now())) {
    throw new LeaseLostError("the write's lease lapsed before its commit (see docs/format.md, the GC rule)");
  }
}

/** Readers of the records, each first awaiting `gate` (undefined inside a transaction). */
export function recordsReader(t: Tables, gate: () => Promise<void> | undefined): RecordsReader {
  return {
    async getImage(id) {
      await gate();
      return t.images.get(id);
    },
    async getImages(ids) {
      await gate();
      return ids.map((id) => t.images.get(id));
    },
    async *scanImages(key, dir, from) {
      await gate();
      yield* records.scanImageIndex(t, key, dir, from);
    },
    async ownerUsage(owner) {
      await gate();
      return records.ownerUsage(t, owner);
    },
    async getMember(imageId, project) {
      await gate();
      return records.getMember(t, imageId, project);
    },
    async listMembers(imageId) {
      await gate();
      return records.listMembers(t, imageId);
    },
    async countMembers(imageId) {
      await gate();
      return records.countMembers(t, imageId);
    },
    async getTask(id) {
      await gate();
      return t.tasks.get(id);
    },
    async listTasks() {
      await gate();
      return records.listTasks(t);
    },
    async tasksOfImage(imageId) {
      await gate();
      return records.tasksOfImage(t, imageId);
    },
    async getNamespace(name) {
      await gate();
      return t.namespaces.get(name);
    },
    async listNamespaces() {
      await gate();
      return [...t.namespaces.getRange()].map((e) => e.value);
    },
    async listResourceTypes() {
      await gate();
      return [...t.resourceTypes.getRange()].map((e) => e.value);
    },
  };
}

export function unitOfWork(t: Tables): CatalogTx {
  const tx: CatalogTx = {
    ...recordsReader(t, () => undefined),
    async putImage(rec, prev) {
      records.putImage(t, rec, prev);
    },
    async removeImage(rec) {
      records.removeImage(t, rec);
    },
    async putMember(m) {
      records.putMember(t, m);
    },
    async removeMember(imageId, project) {
      t.members.removeSync([imageId, project]);
    },
    async putTask(task) {
      records.putTask(t, task);
    },
    async removeTask(task) {
      records.removeTask(t, task);
    },
    async putNamespace(ns) {
      t.namespaces.putSync(ns.namespace, ns);
    },
    async removeNamespace(name) {
      t.namespaces.removeSync(name);
    },
    async putResourceType(rt) {
      t.resourceTypes.putSync(rt.name, rt);
    },
    async removeResourceType(name) {
      t.resourceTypes.removeSync(name);
    },
    async getObject(id) {
      return t.objects.get(id);
    },
    async getManifest(id) {
      return t.manifests.get(id);
    },
    async getMeta<T>(key: string) {
      return t.meta.get(key) as T | undefined;
    },
    async setMeta(key, value) {
      t.meta.putSync(key, value);
    },
    async commitIngest(store, c) {
      checkLease(t, c.lease);
      const r = commitIngest(t, store, c);
      await c.alsoInTransaction?.(tx);
      return r;
    },
    async commitCopy(store, manifestId, c) {
      checkLease(t, c.lease);
      holdInStore(t, store, manifestId, c);
      await c.alsoInTransaction?.(tx);
    },
    async releaseObject(store, manifestId) {
      return releaseObject(t, store, manifestId);
    },
    async markDamaged(manifestId) {
      markDamaged(t, manifestId);
    },
    async recordPacks(store, packs) {
      recordPacks(t.store(store), packs);
    },
    async relocate(store, lease, moves) {
      checkLease(t, lease);
      return relocate(t.store(store), moves);
    },
    async condemn(store, ids) {
      return condemn(t.store(store), ids, nextSeq(t));
    },
    async trashPacks(store, packs, at, countedAt) {
      return trashPacks(t.store(store), packs, at, nextSeq(t), countedAt);
    },
    async trashOrphans(store, objects, at) {
      return trashOrphans(t, store, objects, at, nextSeq(t));
    },
    async untrash(store, name) {
      t.store(store).trash.removeSync(name);
    },
    async claimForDeletion(store, name, now, options): Promise<TrashEntry | undefined> {
      const s = t.store(store);
      const entry = s.trash.get(name);
      if (!entry) return undefined;
      // Wanted again since the collection looked (a commit recorded the pack, or holds the
      // manifest's object here again): it leaves the trash instead.
      if (wanted(t, store, name)) {
        s.trash.removeSync(name);
        return undefined;
      }
      if (options?.graceMs !== undefined && !trashDue(entry, options.graceMs, now)) return undefined;
      if (!options?.ignoreLeases && leasesBefore(t, entry.seq ?? 0, now)) return undefined;
      forget(s, name);
      return entry;
    },
    async leasesBefore(seq, now) {
      return leasesBefore(t, seq, now);
    },
    async nextSeq() {
      return nextSeq(t);
    },
    async rebuildStore(store, input) {
      return rebuildStore(t, store, input);
    },
    async setRestoredHolders(manifestId, holders) {
      return setRestoredHolders(t, manifestId, holders);
    },
    async raiseSeq(seq) {
      if (((t.meta.get("seq") as number | undefined) ?? 0) < seq) t.meta.putSync("seq", seq);
    },
  };
  return tx;
}
