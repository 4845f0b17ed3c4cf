/**
 * Scrub and repair: every chunk a store indexes is read and checked against its id, every
 * manifest the store holds is checked for chunks its index lacks. With `repair`, a bad or
 * missing chunk is copied in from another store that has it whole (checked on the way), and
 * the index switched to the new copy in one transaction; objects left with a chunk no store can
 * supply are marked damaged, and their downloads then fail with a clear error instead of
 * sending wrong bytes.
 *
 * Memory: the index entries of one store, grouped by pack (~100 bytes per chunk).
 */
import type { ChunkMove, ChunkRecord } from "../catalog/catalog.js";
import { decodeManifest, distinctChunkIds } from "../catalog/manifest.js";
import { CorruptDataError, NotFoundError } from "../errors.js";
import type { ChunkLocation } from "../store/pack-writer.js";
import { readOne, readRun, runsOf, writeRun } from "./chunk-runs.js";
import type { Engine } from "./engine.js";
import type { Store } from "./stores.js";

export interface FsckOptions {
  /** One store (default: all). */
  store?: string;
  /** Replace bad or missing chunks from other stores; mark what cannot be replaced. */
  repair?: boolean;
  /** Told how many stored bytes of a store have been checked, of how many (for progress bars). */
  onProgress?: (step: string, done: number, total: number) => void;
  /** Read at most this many bytes per second (a background scrub sharing the disks); default no limit. */
  bytesPerSecond?: number;
  /** Stops the check (rejecting with the signal's reason) between reads. */
  signal?: AbortSignal;
}

export interface StoreFsckReport {
  store: string;
  chunksChecked: number;
  bytesChecked: number;
  manifestsChecked: number;
  /** Chunks whose stored bytes do not match their id (or whose pack is gone). */
  badChunks: number;
  /** Chunks a manifest held here lists that the store's index lacks. */
  missingChunks: number;
  /** Packs the index points at that the backend does not have. */
  missingPacks: number;
  /** Bad or missing chunks replaced from another store. */
  repaired: number;
  /** Objects with a chunk no store could supply, now marked damaged (hex ids). */
  damagedObjects: string[];
}

export interface FsckReport {
  seconds: number;
  stores: StoreFsckReport[];
}

export async function fsck(engine: Engine, options: FsckOptions): Promise<FsckReport> {
  const started = performance.now();
  const stores = options.store ? [engine.store(options.store)] : [...engine.stores.values()];
  const reports: StoreFsckReport[] = [];
  for (const s of stores) reports.push(await checkStore(engine, s, options));
  return { seconds: Math.round((performance.now() - started) / 10) / 100, stores: reports };
}

interface Entry {
  id: Buffer;
  rec: ChunkRecord;
}

async function checkStore(engine: Engine, store: Store, o: FsckOptions): Promise<StoreFsckReport> {
  const repair = o.repair === true;
  const tell = o.onProgress ?? (() => {});
  const report: StoreFsckReport = {
    store: store.name,
    chunksChecked: 0,
    bytesChecked: 0,
    manifestsChecked: 0,
    badChunks: 0,
    missingChunks: 0,
    missingPacks: 0,
    repaired: 0,
    damagedObjects: [],
  };
  const byPack = new Map<string, Entry[]>();
  for await (const e of store.index.scanChunks()) {
    const pack = e.rec.pack.toString("hex");
    const list = byPack.get(pack) ?? [];
    if (list.length === 0) byPack.set(pack, list);
    list.push(e);
  }
  /** Bad chunks (hex) and where the index had them: undefined for chunks it lacks. */
  const bad = new Map<string, Entry | undefined>();
  let total = 0;
  for (const entries of byPack.values()) for (const e of entries) total += e.rec.length;
  const step = `${store.name}: chunks checked`;
  tell(step, 0, total);
  const began = performance.now();
  // Ahead of the rate: wait until the bytes read so far are due.
  const pace = async () => {
    o.signal?.throwIfAborted();
    if (!o.bytesPerSecond) return;
    const due = (report.bytesChecked / o.bytesPerSecond) * 1000 - (performance.now() - began);
    if (due > 0) await new Promise((r) => setTimeout(r, due));
    o.signal?.throwIfAborted();
  };
  for (const entries of byPack.values()) {
    entries.sort((a, b) => a.rec.offset - b.rec.offset);
    const runs = runsOf(engine, store, entries);
    const byId = new Map(entries.map((e) => [e.id.toString("hex"), e]));
    let packMissing = false;
    for (const run of runs) {
      report.chunksChecked += run.chunks.length;
      report.bytesChecked += run.stored;
      tell(step, report.bytesChecked, total);
      await pace();
      if (packMissing) {
        for (const c of run.chunks) bad.set(c.hex, byId.get(c.hex));
        continue;
      }
      try {
        await readRun(engine, run);
      } catch (e) {
        if (e instanceof NotFoundError) {
          packMissing = true;
          report.missingPacks++;
          for (const c of run.chunks) bad.set(c.hex, byId.get(c.hex));
          continue;
        }
        if (!(e instanceof CorruptDataError)) throw e;
        // Which ones: each chunk of the run on its own.
        for (const c of run.chunks) {
          const one = byId.get(c.hex) as Entry;
          if (!(await readOne(engine, store, one.rec, c))) bad.set(c.hex, one);
        }
      }
    }
  }
  report.badChunks = bad.size;

  // Manifests held here: every chunk they list must be indexed here.
  const needed = new Map<string, number>(); // missing chunk → manifests listing it (its refs)
  const users = new Map<string, string[]>(); // bad or missing chunk → objects listing it
  for await (const { id: key, obj } of engine.catalog.scanObjects()) {
    if (!(obj.stores[store.name] ?? 0)) continue;
    const manifest = await engine.catalog.getManifest(key);
    if (!manifest) continue;
    report.manifestsChecked++;
    const object = key.toString("hex");
    const ids = distinctChunkIds(decodeManifest(manifest));
    const found = await store.index.lookup([...ids.values()]);
    let k = 0;
    for (const hex of ids.keys()) {
      const indexed = found[k++] !== undefined;
      if (!indexed) needed.set(hex, (needed.get(hex) ?? 0) + 1);
      if (bad.has(hex) || !indexed) {
        const list = users.get(hex) ?? [];
        if (list.length === 0) users.set(hex, list);
        list.push(object);
      }
    }
  }
  report.missingChunks = needed.size;
  for (const hex of needed.keys()) bad.set(hex, undefined);
  if (!repair || bad.size === 0) return report;
  // What the repair writes is held by a lease until its commit, as any write's.
  return engine.leased(`repair of ${store.name}`, (lease) =>
    repairStore(engine, store, report, bad, needed, users, lease),
  );
}

/** Each bad or missing chunk from the first other store that has it whole; the rest damaged. */
async function repairStore(
  engine: Engine,
  store: Store,
  report: StoreFsckReport,
  bad: Map<string, Entry | undefined>,
  needed: Map<string, number>,
  users: Map<string, string[]>,
  lease: number,
): Promise<StoreFsckReport> {
  // Repair: each bad or missing chunk from the first other store that has it whole.
  const writer = await engine.packWriter(store);
  const written = new Map<string, ChunkLocation>();
  try {
    for (const hex of bad.keys()) {
      const id = Buffer.from(hex, "hex");
      for (const other of engine.stores.values()) {
        if (other === store) continue;
        const [rec] = await other.index.lookup([id]);
        const got = rec && (await readOne(engine, other, rec, { id, hex, stored: rec.length }));
        if (!got) continue;
        await writeRun(engine, store, got.run, got.data, writer, written);
        break;
      }
    }
    const fresh = await writer.finish();
    // Only where the index still has the chunk where it was found bad (or still lacks it).
    const moves: ChunkMove[] = [];
    for (const [hex, was] of bad) {
      const to = written.get(hex);
      if (to) moves.push({ id: Buffer.from(hex, "hex"), from: was?.rec, to, refs: needed.get(hex) ?? 0 });
    }
    // A chunk no store could supply damages its objects only if it is still where it was found
    // bad (or still missing): a collection may have moved it (repack) or dropped it meanwhile.
    const unmended = [...bad].filter(([hex]) => !written.has(hex));
    const checks: ChunkMove[] = unmended.map(([hex, was]) => ({
      id: Buffer.from(hex, "hex"),
      from: was?.rec,
    }));
    const { held, damaged } = await engine.catalog.transact(async (tx) => {
      await tx.recordPacks(store.name, fresh);
      const applied = await tx.relocate(store.name, lease, [...moves, ...checks]);
      const objects = new Set<string>();
      unmended.forEach(([hex], k) => {
        if (applied[moves.length + k]) for (const object of users.get(hex) ?? []) objects.add(object);
      });
      for (const object of objects) await tx.markDamaged(Buffer.from(object, "hex"));
      return { held: applied.slice(0, moves.length), damaged: objects };
    });
    report.repaired += held.filter(Boolean).length;
    report.damagedObjects = [...damaged];
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return report;
}
