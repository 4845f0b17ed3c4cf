/**
 * Garbage collection, online: runs beside ingests, copies, downloads and deletes, in this
 * process or any other on the same catalog. Per store:
 *
 * 1. Chunks whose refs are 0 are condemned: out of the index (new writes store them again),
 *    still in their packs, stamped with the catalog's sequence number.
 * 2. Packs with no indexed chunk left go to the trash, after the manifests they carry for
 *    objects the store still holds are put on their own; packs mostly dead are repacked first.
 * 3. Objects on the backend the catalog does not know (packs and manifests of failed or
 *    unfinished writes) go to the trash too.
 * 4. Trash whose grace period is over is deleted, unless it is wanted again (a pack a commit
 *    revived, a manifest its object needs again) or a lease alive now began before it was
 *    trashed: a write that found a chunk, or is writing a pack, holds what it needs (catalog.ts,
 *    the GC rule). The grace period covers downloads still reading a pack that just went.
 *
 * docs/format.md has the rules.
 */
import type { ChunkMove, ChunkRecord } from "../catalog/catalog.js";
import { type TrashEntry, trashDue } from "../catalog/store-index.js";
import { StoreFullError } from "../errors.js";
import { manifestName, packName } from "../store/names.js";
import { readPackEntries } from "../store/pack-entries.js";
import { ENTRY_FLAG_MANIFEST } from "../store/pack-format.js";
import type { ChunkLocation } from "../store/pack-writer.js";
import { readRun, runsOf, writeRun } from "./chunk-runs.js";
import type { Engine } from "./engine.js";
import type { Store } from "./stores.js";

export interface GcOptions {
  /** Seconds unreferenced packs and manifest objects wait in the trash (default 3600). */
  graceSeconds?: number;
  /** Count what would go; change nothing. */
  dryRun?: boolean;
  /** One store (default: all). */
  store?: string;
  /** Packs whose live bytes are below this fraction of their size are repacked (default 0.5). */
  repackBelow?: number;
  /** Told how far each step has come (for progress bars). */
  onProgress?: (step: string, done: number, total: number) => void;
  /**
   * Delete what is due even where a lease forbids it. Unsafe: it exists so that a test can
   * show that the lease rule is what keeps writes in other processes whole.
   */
  unsafeIgnoreLeases?: boolean;
}

export interface StoreGcReport {
  store: string;
  /** Unreferenced chunks dropped from the index (condemned), and their stored bytes. */
  chunksDropped: number;
  bytesDropped: number;
  /**
   * Of those, the chunks dropped while a write was in progress (a lease alive): their packs
   * stay until it ends, in case it found them before they went.
   */
  chunksPinned: number;
  /** Packs left without a live chunk, now in the trash. */
  packsTrashed: number;
  /** Packs mostly dead whose live chunks moved to new packs (then trashed), and those bytes. */
  packsRepacked: number;
  bytesRepacked: number;
  /** Objects on the backend the catalog does not know, now in the trash. */
  orphansTrashed: number;
  /** Objects deleted from the backend this run (their grace period over), and their bytes. */
  objectsDeleted: number;
  bytesDeleted: number;
  /** Objects left in the trash, waiting out the grace period. */
  trashWaiting: number;
  /** What crashed writes left beside the objects (temporary files), deleted this run. */
  leftoversDeleted: number;
}

export interface GcReport {
  dryRun: boolean;
  seconds: number;
  stores: StoreGcReport[];
}

const DEFAULT_GRACE_SECONDS = 3600;
const DEFAULT_REPACK_BELOW = 0.5;
/** GC's commits may use the catalog's space reserve: on a full disk, they are what frees it. */
const USE_RESERVE = { useReserve: true };

/** Chunks re-checked and dropped per write transaction: short enough not to hold up commits. */
const DROP_BATCH = 20_000;

/** The last run queued on each store: runs on one store go one after the other. */
const queues = new WeakMap<Store, Promise<unknown>>();

/**
 * Collects every store (or `options.store`), one collection at a time across every node that
 * shares the catalog (its "gc" lock): nodes on a shared catalog do not scan and delete the same
 * things at once. A dry run only reads, and takes no lock.
 */
export async function collectGarbage(engine: Engine, options: GcOptions): Promise<GcReport> {
  const started = performance.now();
  const stores = options.store ? [engine.store(options.store)] : [...engine.stores.values()];
  const reports: StoreGcReport[] = [];
  for (const store of stores) {
    const before = queues.get(store) ?? Promise.resolve();
    const alone = () =>
      options.dryRun === true
        ? collectStore(engine, store, options)
        : engine.catalog.exclusively("gc", () => collectStore(engine, store, options));
    const run = before.catch(() => {}).then(alone);
    queues.set(store, run);
    reports.push(await run);
  }
  return {
    dryRun: options.dryRun === true,
    seconds: Math.round((performance.now() - started) / 10) / 100,
    stores: reports,
  };
}

async function collectStore(engine: Engine, store: Store, o: GcOptions): Promise<StoreGcReport> {
  const dry = o.dryRun === true;
  const graceMs = (o.graceSeconds ?? DEFAULT_GRACE_SECONDS) * 1000;
  const { index } = store;
  const cat = engine.catalog;
  const report: StoreGcReport = {
    store: store.name,
    chunksDropped: 0,
    bytesDropped: 0,
    chunksPinned: 0,
    packsTrashed: 0,
    packsRepacked: 0,
    bytesRepacked: 0,
    orphansTrashed: 0,
    objectsDeleted: 0,
    bytesDeleted: 0,
    trashWaiting: 0,
    leftoversDeleted: 0,
  };

  // Revivals after this are not in the counts below: the packs they touch are not trashed.
  const countedAt = dry ? 0 : await cat.transact((tx) => tx.nextSeq(), USE_RESERVE);

  // 1. Unreferenced chunks condemned.
  const dead: Buffer[] = [];
  const deadBytes = new Map<string, number>();
  for await (const { id, rec } of index.scanChunks()) {
    if (rec.refs !== 0) continue;
    dead.push(id);
    if (dry) deadBytes.set(id.toString("hex"), rec.length);
  }
  const tell = o.onProgress ?? (() => {});
  tell(`${store.name}: unreferenced chunks`, 0, dead.length);
  const writing = (await cat.liveLeases()).length > 0;
  for (let at = 0; at < dead.length; at += DROP_BATCH) {
    const batch = dead.slice(at, at + DROP_BATCH);
    const { condemned, bytes } = dry
      ? {
          condemned: batch.length,
          bytes: batch.reduce((n, id) => n + (deadBytes.get(id.toString("hex")) ?? 0), 0),
        }
      : await cat.transact((tx) => tx.condemn(store.name, batch), USE_RESERVE);
    report.chunksDropped += condemned;
    report.bytesDropped += bytes;
    if (writing) report.chunksPinned += condemned;
    tell(`${store.name}: unreferenced chunks`, Math.min(at + DROP_BATCH, dead.length), dead.length);
  }

  // 2. Packs with no live chunk: their records out, the packs into the trash. Packs mostly
  // dead: their live chunks moved to new packs first (repack), then the same.
  const known: { id: Buffer; size: number }[] = [];
  for await (const { id, rec } of index.scanPacks()) known.push({ id, size: rec.size });
  const liveBytes = new Map<string, number>();
  for await (const { id, rec } of index.scanChunks()) {
    // In a dry run the dead chunks are still indexed: count them dead all the same.
    if (dry && deadBytes.has(id.toString("hex"))) continue;
    const pack = rec.pack.toString("hex");
    liveBytes.set(pack, (liveBytes.get(pack) ?? 0) + rec.length);
  }
  const repackBelow = o.repackBelow ?? DEFAULT_REPACK_BELOW;
  const sparse = known.filter((p) => {
    const live = liveBytes.get(p.id.toString("hex")) ?? 0;
    return live > 0 && live < p.size * repackBelow;
  });
  report.packsRepacked = sparse.length;
  for (const p of sparse) report.bytesRepacked += liveBytes.get(p.id.toString("hex")) ?? 0;
  const stuck = !dry && sparse.length > 0 ? await repackUnlessFull(engine, store, sparse) : new Set<string>();
  const emptied = new Set(sparse.map((p) => p.id.toString("hex")).filter((hex) => !stuck.has(hex)));
  const going = known.filter((p) => {
    const hex = p.id.toString("hex");
    return emptied.has(hex) || !liveBytes.has(hex);
  });
  report.packsTrashed = going.length - emptied.size;
  if (!dry) {
    for (const [i, p] of going.entries()) {
      tell(`${store.name}: packs`, i, going.length);
      await rescueManifests(engine, store, packName(p.id.toString("hex")), p.size);
    }
    const names = going.map((p) => ({ name: packName(p.id.toString("hex")), size: p.size }));
    // Stamped when they go, not when the run began: rescuing manifests and listing a remote
    // store may take longer than the grace period readers are owed.
    if (names.length > 0)
      await cat.transact((tx) => tx.trashPacks(store.name, names, Date.now(), countedAt), USE_RESERVE);
  }

  // 3. Objects the catalog does not know (a write in progress may be making them: its lease
  // keeps them, step 4).
  const orphans: { name: string; size: number }[] = [];
  for (const prefix of ["packs/", "manifests/"]) {
    for await (const obj of store.backend.list(prefix)) {
      if ((await index.inTrash(obj.name)) || (await index.wants(obj.name))) continue;
      orphans.push(obj);
    }
  }
  report.orphansTrashed = orphans.length;
  if (!dry && orphans.length > 0) {
    report.orphansTrashed = await cat.transact(
      (tx) => tx.trashOrphans(store.name, orphans, Date.now()),
      USE_RESERVE,
    );
  }

  // 4. Trash whose grace period is over, unless it is wanted again or a lease holds it.
  const trash: { name: string; entry: TrashEntry }[] = [];
  for await (const t of index.scanTrash()) trash.push(t);
  if (dry) {
    for (const { entry } of trash) {
      if (trashDue(entry, graceMs, Date.now())) report.objectsDeleted++;
      else report.trashWaiting++;
    }
    return report;
  }
  let trashSeen = 0;
  for (const { name, entry } of trash) {
    tell(`${store.name}: deleting`, trashSeen++, trash.length);
    if (await index.wants(name)) {
      await cat.transact((tx) => tx.untrash(store.name, name), USE_RESERVE);
      continue;
    }
    const claimed =
      trashDue(entry, graceMs, Date.now()) &&
      (await cat.transact(
        (tx) =>
          tx.claimForDeletion(store.name, name, Date.now(), { graceMs, ignoreLeases: o.unsafeIgnoreLeases }),
        USE_RESERVE,
      ));
    if (!claimed) {
      report.trashWaiting++;
      continue;
    }
    await store.backend.delete(name);
    report.objectsDeleted++;
    report.bytesDeleted += claimed.size;
  }
  // A put takes seconds and its write holds a lease renewed meanwhile: a temporary file older
  // than a lease's whole life belongs to no write in progress on any node.
  if (!dry) report.leftoversDeleted = (await store.backend.sweepLeftovers?.(engine.leaseMs)) ?? 0;
  return report;
}

/**
 * Repack, except on a store with no room for the new packs: then every sparse pack stays as it
 * is, and the collection goes on to delete what it can (on a full disk, that is the point).
 */
async function repackUnlessFull(
  engine: Engine,
  store: Store,
  packs: { id: Buffer; size: number }[],
): Promise<Set<string>> {
  try {
    return await engine.leased(`repack in ${store.name}`, (lease) => repack(engine, store, packs, lease));
  } catch (e) {
    if (!(e instanceof StoreFullError)) throw e;
    return new Set(packs.map((p) => p.id.toString("hex")));
  }
}

/**
 * Moves the live chunks of `packs` into new packs of the same store: read and checked, written
 * as stored, then in one unit of work every index entry still pointing at its old place is
 * switched to the new one. The old packs stay where they are (readers may be using them) for
 * the caller to trash; a chunk that died meanwhile leaves an unindexed copy behind. Returns
 * the packs (hex ids) that still hold a live chunk it could not move: not to be trashed.
 */
async function repack(
  engine: Engine,
  store: Store,
  packs: { id: Buffer; size: number }[],
  lease: number,
): Promise<Set<string>> {
  const wanted = new Set(packs.map((p) => p.id.toString("hex")));
  const entries: { id: Buffer; rec: ChunkRecord }[] = [];
  for await (const e of store.index.scanChunks()) if (wanted.has(e.rec.pack.toString("hex"))) entries.push(e);
  entries.sort((x, y) => Buffer.compare(x.rec.pack, y.rec.pack) || x.rec.offset - y.rec.offset);
  const writer = await engine.packWriter(store);
  const written = new Map<string, ChunkLocation>();
  const runs = runsOf(engine, store, entries);
  try {
    for (const run of runs) {
      const { data } = await readRun(engine, run);
      await writeRun(engine, store, run, data, writer, written);
      await writer.drain();
    }
    const fresh = await writer.finish();
    const moves: ChunkMove[] = entries.map((e) => ({
      id: e.id,
      from: e.rec,
      to: written.get(e.id.toString("hex")),
    }));
    const held = await engine.catalog.transact(async (tx) => {
      await tx.recordPacks(store.name, fresh);
      return tx.relocate(store.name, lease, moves);
    }, USE_RESERVE);
    const stuck = new Set<string>();
    moves.forEach((m, k) => {
      if (held[k] && !m.to) stuck.add((m.from as ChunkRecord).pack.toString("hex"));
    });
    return stuck;
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/**
 * Puts on their own the manifests a pack carries for objects the store still holds, before
 * the pack goes: they are the store's rebuild copy of those manifests.
 */
async function rescueManifests(engine: Engine, store: Store, name: string, size: number): Promise<void> {
  for (const e of await readPackEntries(store.backend, name, size)) {
    if (!(e.flags & ENTRY_FLAG_MANIFEST)) continue;
    if (!(((await engine.catalog.getObject(e.id))?.stores[store.name] ?? 0) > 0)) continue;
    const bytes = await store.backend.get(name, e.offset, e.length);
    await store.backend.put(manifestName(e.id.toString("hex")), [bytes]);
  }
}
