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
import { decodeManifest, distinctChunkIds } from "../catalog/manifest.js";
import { type ChunkRecord, decodeChunkRecord, encodeChunkRecord } from "../catalog/store-index.js";
import { CorruptDataError, NotFoundError } from "../errors.js";
import { type ChunkLocation, PackWriter } from "../store/pack-writer.js";
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
  for (const { key, value } of store.index.chunks.getRange()) {
    const rec = decodeChunkRecord(value as Buffer);
    const pack = rec.pack.toString("hex");
    const list = byPack.get(pack) ?? [];
    if (list.length === 0) byPack.set(pack, list);
    list.push({ id: Buffer.from(key), rec });
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
  for (const { key, value } of engine.catalog.objects.getRange()) {
    if (!(value.stores[store.name] ?? 0)) continue;
    const manifest = engine.catalog.manifests.get(key);
    if (!manifest) continue;
    report.manifestsChecked++;
    const object = Buffer.from(key).toString("hex");
    for (const [hex, id] of distinctChunkIds(decodeManifest(manifest))) {
      const indexed = store.index.hasChunk(id);
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

  // Repair: each bad or missing chunk from the first other store that has it whole.
  const writer = new PackWriter(store.backend, { packSize: store.packSize, buffers: store.packBuffers });
  const written = new Map<string, ChunkLocation>();
  try {
    for (const hex of bad.keys()) {
      const id = Buffer.from(hex, "hex");
      for (const other of engine.stores.values()) {
        if (other === store) continue;
        const rec = other.index.getChunk(id);
        const got = rec && (await readOne(engine, other, rec, { id, hex, stored: rec.length }));
        if (!got) continue;
        await writeRun(engine, store, got.run, got.data, writer, written);
        break;
      }
    }
    const fresh = await writer.finish();
    const damaged = new Set<string>();
    await engine.catalog.transaction(() => {
      store.index.recordPacks(fresh);
      for (const [hex, was] of bad) {
        const id = Buffer.from(hex, "hex");
        const to = written.get(hex);
        const cur = store.index.chunks.get(id);
        const rec = cur ? decodeChunkRecord(cur) : undefined;
        if (to) {
          // Only if the index still has it where it was found bad (or still lacks it).
          const same = was && rec ? rec.pack.equals(was.rec.pack) && rec.offset === was.rec.offset : !rec;
          if (!same) continue;
          store.index.chunks.putSync(
            id,
            encodeChunkRecord({ ...to, refs: rec?.refs ?? needed.get(hex) ?? 0 }),
          );
          report.repaired++;
          continue;
        }
        for (const object of users.get(hex) ?? []) damaged.add(object);
      }
      for (const object of damaged) {
        const key = Buffer.from(object, "hex");
        const obj = engine.catalog.objects.get(key);
        if (obj) engine.catalog.objects.putSync(key, { ...obj, damaged: true });
      }
    });
    report.damagedObjects = [...damaged];
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return report;
}
