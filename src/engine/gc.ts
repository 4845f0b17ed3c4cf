/**
 * Garbage collection, online: runs beside ingests, copies, downloads and deletes of the same
 * process. Per store:
 *
 * 1. Chunks whose refs are 0 leave the index, in write transactions that re-check refs and
 *    spare every chunk an ingest or copy in progress may still reference (ActiveWrite.pinned):
 *    an ingest adds a chunk's id to its manifest before it looks the chunk up, and both happen
 *    in one turn of the event loop, which a transaction's body never interleaves with. So an
 *    ingest either found the chunk (and it is pinned) or did not (and writes its own copy).
 * 2. Packs with no indexed chunk left leave the catalog and go to the store's trash, after the
 *    manifests they carry for objects the store still holds are put on their own. The packs
 *    considered are those the catalog knew before liveness was counted: a pack's live chunks
 *    only ever decrease, so one seen empty stays empty.
 * 3. Objects on the backend the catalog does not know (packs and manifests of failed or
 *    unfinished writes) go to the trash too, unless a write in progress here is making them.
 * 4. Trash older than the grace period is deleted, unless it came back meanwhile (a pack an
 *    ingest of another process committed, a manifest its object needs again).
 *
 * The grace period covers what this process cannot see: downloads still reading a pack that
 * just lost its last chunk, and writes of other processes on the same store. docs/format.md
 * has the rules.
 */
import { type ChunkRecord, decodeChunkRecord, encodeChunkRecord, trashDue } from "../catalog/store-index.js";
import { StoreFullError } from "../errors.js";
import { manifestIdFromName, manifestName, packIdFromName, packName } from "../store/names.js";
import { readPackEntries } from "../store/pack-entries.js";
import { ENTRY_FLAG_MANIFEST } from "../store/pack-format.js";
import { type ChunkLocation, PackWriter } from "../store/pack-writer.js";
import { readRun, runsOf, writeRun } from "./chunk-runs.js";
import type { Engine } from "./engine.js";
import type { Store } from "./stores.js";

/** An ingest or copy in progress, as garbage collection must see it. */
export interface ActiveWrite {
  store: string;
  /** Chunk ids it may reference at its commit (views are fine: read at once). */
  pinned(): Iterable<Buffer>;
  /** Names of the objects it has written or is writing on the store's backend. */
  objects(): Iterable<string>;
}

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
}

export interface StoreGcReport {
  store: string;
  /** Unreferenced chunks dropped from the index, and their stored bytes. */
  chunksDropped: number;
  bytesDropped: number;
  /** Unreferenced chunks kept because a write in progress may reference them. */
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

export async function collectGarbage(engine: Engine, options: GcOptions): Promise<GcReport> {
  const started = performance.now();
  const stores = options.store ? [engine.store(options.store)] : [...engine.stores.values()];
  const reports: StoreGcReport[] = [];
  for (const store of stores) {
    const before = queues.get(store) ?? Promise.resolve();
    const run = before.catch(() => {}).then(() => collectStore(engine, store, options));
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
  };

  // 1. Unreferenced chunks out of the index.
  const dead: Buffer[] = [];
  for await (const { key, value } of politely(index.chunks.getRange())) {
    if ((value as Buffer).readUInt32LE(28) === 0) dead.push(Buffer.from(key));
  }
  // A dry run drops nothing; the chunks it would drop, to count as dead below.
  const dropped = new Set<string>();
  const tell = o.onProgress ?? (() => {});
  tell(`${store.name}: unreferenced chunks`, 0, dead.length);
  for (let at = 0; at < dead.length; at += DROP_BATCH) {
    const batch = dead.slice(at, at + DROP_BATCH);
    const counts = { pinned: 0, dropped: 0, bytes: 0 };
    const decide = () => {
      // Counted afresh on each call: the catalog may run a transaction again (space reserve).
      counts.pinned = 0;
      counts.dropped = 0;
      counts.bytes = 0;
      const pins = pinned(engine, store.name);
      for (const id of batch) {
        const cur = index.chunks.get(id);
        if (!cur) continue;
        const rec = decodeChunkRecord(cur);
        if (rec.refs !== 0) continue;
        const hex = id.toString("hex");
        if (pins.has(hex)) {
          counts.pinned++;
          continue;
        }
        if (dry) dropped.add(hex);
        else index.chunks.removeSync(id);
        counts.dropped++;
        counts.bytes += rec.length;
      }
    };
    if (dry) decide();
    else await engine.catalog.transaction(decide, USE_RESERVE);
    report.chunksPinned += counts.pinned;
    report.chunksDropped += counts.dropped;
    report.bytesDropped += counts.bytes;
    tell(`${store.name}: unreferenced chunks`, Math.min(at + DROP_BATCH, dead.length), dead.length);
  }

  // 2. Packs with no live chunk: their records out, the packs into the trash. Packs mostly
  // dead: their live chunks moved to new packs first (repack), then the same.
  const known = [...index.packs.getRange()].map(({ key, value }) => ({
    id: Buffer.from(key),
    size: value.size,
  }));
  const liveBytes = new Map<string, number>();
  for await (const { key, value } of politely(index.chunks.getRange())) {
    // In a dry run the dropped chunks are still indexed: count them dead all the same.
    if (dry && dropped.has(Buffer.from(key).toString("hex"))) continue;
    const pack = (value as Buffer).subarray(0, 16).toString("hex");
    liveBytes.set(pack, (liveBytes.get(pack) ?? 0) + (value as Buffer).readUInt32LE(20));
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
  const now = Date.now();
  if (!dry) {
    for (const [i, p] of going.entries()) {
      tell(`${store.name}: packs`, i, going.length);
      await rescueManifests(engine, store, packName(p.id.toString("hex")), p.size);
    }
    await engine.catalog.transaction(() => {
      for (const p of going) {
        index.packs.removeSync(p.id);
        index.trash.putSync(packName(p.id.toString("hex")), { at: now, after: now + graceMs, size: p.size });
      }
    }, USE_RESERVE);
  }

  // 3. Objects the catalog does not know, unless a write here is making them.
  const making = objectsBeingWritten(engine, store.name);
  const orphans: { name: string; size: number }[] = [];
  for (const prefix of ["packs/", "manifests/"]) {
    for await (const obj of store.backend.list(prefix)) {
      if (making.has(obj.name) || index.trash.doesExist(obj.name) || wanted(engine, store, obj.name))
        continue;
      orphans.push(obj);
    }
  }
  report.orphansTrashed = orphans.length;
  if (!dry && orphans.length > 0) {
    await engine.catalog.transaction(() => {
      for (const obj of orphans) {
        index.trash.putSync(obj.name, { at: now, after: now + graceMs, size: obj.size });
      }
    }, USE_RESERVE);
  }

  // 4. Trash whose grace period is over, unless it is wanted again.
  if (dry) {
    for (const { value } of index.trash.getRange()) {
      if (trashDue(value, graceMs, now)) report.objectsDeleted++;
      else report.trashWaiting++;
    }
    return report;
  }
  const busy = objectsBeingWritten(engine, store.name);
  const trash = [...index.trash.getRange()];
  let trashSeen = 0;
  for (const { key, value } of trash) {
    tell(`${store.name}: deleting`, trashSeen++, trash.length);
    const name = key as string;
    if (wanted(engine, store, name)) {
      await engine.catalog.transaction(() => index.trash.removeSync(name), USE_RESERVE);
      continue;
    }
    if (!trashDue(value, graceMs, Date.now()) || busy.has(name)) {
      report.trashWaiting++;
      continue;
    }
    await store.backend.delete(name);
    await engine.catalog.transaction(() => index.trash.removeSync(name), USE_RESERVE);
    report.objectsDeleted++;
    report.bytesDeleted += value.size;
  }
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
    return await repack(engine, store, packs);
  } catch (e) {
    if (!(e instanceof StoreFullError)) throw e;
    return new Set(packs.map((p) => p.id.toString("hex")));
  }
}

/**
 * Moves the live chunks of `packs` into new packs of the same store: read and checked, written
 * as stored, then in one transaction every index entry still pointing at its old place is
 * switched to the new one. The old packs stay where they are (readers may be using them) for
 * the caller to trash; a chunk that died meanwhile leaves an unindexed copy behind. Returns
 * the packs (hex ids) that still hold a live chunk it could not move: not to be trashed.
 */
async function repack(
  engine: Engine,
  store: Store,
  packs: { id: Buffer; size: number }[],
): Promise<Set<string>> {
  const { index } = store;
  const wanted = new Set(packs.map((p) => p.id.toString("hex")));
  const entries: { id: Buffer; rec: ChunkRecord }[] = [];
  for await (const { key, value } of politely(index.chunks.getRange())) {
    const rec = decodeChunkRecord(value as Buffer);
    if (wanted.has(rec.pack.toString("hex"))) entries.push({ id: Buffer.from(key), rec });
  }
  entries.sort((x, y) => Buffer.compare(x.rec.pack, y.rec.pack) || x.rec.offset - y.rec.offset);
  const writer = new PackWriter(store.backend, { packSize: store.packSize, buffers: store.packBuffers });
  const written = new Map<string, ChunkLocation>();
  const runs = runsOf(engine, store, entries);
  try {
    for (const run of runs) {
      const { data } = await readRun(engine, run);
      await writeRun(engine, store, run, data, writer, written);
      await writer.drain();
    }
    const fresh = await writer.finish();
    const stuck = new Set<string>();
    await engine.catalog.transaction(() => {
      index.recordPacks(fresh);
      for (const e of entries) {
        const cur = index.chunks.get(e.id);
        if (!cur) continue;
        const rec = decodeChunkRecord(cur);
        if (!rec.pack.equals(e.rec.pack) || rec.offset !== e.rec.offset) continue;
        const to = written.get(e.id.toString("hex"));
        if (to) index.chunks.putSync(e.id, encodeChunkRecord({ ...to, refs: rec.refs }));
        else stuck.add(rec.pack.toString("hex"));
      }
    }, USE_RESERVE);
    return stuck;
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/**
 * The entries of a scan, with a pause every few thousand for the requests this process is
 * serving: a million-chunk scan would otherwise hold the event loop for a second.
 */
async function* politely<T>(entries: Iterable<T>): AsyncGenerator<T> {
  let n = 0;
  for (const e of entries) {
    yield e;
    if (++n % 5000 === 0) await new Promise((r) => setImmediate(r));
  }
}

/** Hex ids of every chunk the writes in progress on `store` may reference. */
function pinned(engine: Engine, store: string): Set<string> {
  const out = new Set<string>();
  for (const w of engine.activeWrites) {
    if (w.store !== store) continue;
    for (const id of w.pinned()) out.add(id.toString("hex"));
  }
  return out;
}

/** Names of the objects the writes in progress on `store` are putting on its backend. */
function objectsBeingWritten(engine: Engine, store: string): Set<string> {
  const out = new Set<string>();
  for (const w of engine.activeWrites) if (w.store === store) for (const n of w.objects()) out.add(n);
  return out;
}

/** Whether the catalog needs object `name` on `store`: a pack it indexes, a manifest it holds. */
function wanted(engine: Engine, store: Store, name: string): boolean {
  const pack = packIdFromName(name);
  if (pack) return store.index.packs.doesExist(Buffer.from(pack, "hex"));
  const manifest = manifestIdFromName(name);
  if (manifest) return (engine.catalog.getObject(Buffer.from(manifest, "hex"))?.stores[store.name] ?? 0) > 0;
  return true; // not ours to collect (the store's format record, anything else)
}

/**
 * Puts on their own the manifests a pack carries for objects the store still holds, before
 * the pack goes: they are the store's rebuild copy of those manifests.
 */
async function rescueManifests(engine: Engine, store: Store, name: string, size: number): Promise<void> {
  for (const e of await readPackEntries(store.backend, name, size)) {
    if (!(e.flags & ENTRY_FLAG_MANIFEST)) continue;
    if (!((engine.catalog.getObject(e.id)?.stores[store.name] ?? 0) > 0)) continue;
    const bytes = await store.backend.get(name, e.offset, e.length);
    await store.backend.put(manifestName(e.id.toString("hex")), [bytes]);
  }
}
