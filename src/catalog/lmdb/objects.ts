/**
 * Manifests and objects in LMDB, and their holders per store: the commit of an ingest or a
 * copy, release, and rebuild-index's restoration. Synchronous, inside the catalog's write
 * transactions; the rules are CatalogTx's (catalog.ts). Reference counts change only here
 * and in store-ops.ts.
 */
import { ChunkVanishedError } from "../../errors.js";
import type {
  IngestCommit,
  ObjectRecord,
  RebuildCounts,
  RebuildInput,
  StoreHoldings,
  StoreWrite,
} from "../catalog.js";
import { decodeManifest, distinctChunkIds } from "../manifest.js";
import { decodeChunkRecord, encodeChunkRecord } from "./chunk-record.js";
import { nextSeq } from "./leases.js";
import { addReference, dropReference, recordPacks } from "./store-ops.js";
import type { Tables } from "./tables.js";

/** The record without the `restored` mark: holders changed on purpose are no guess any more. */
function settled(obj: ObjectRecord): ObjectRecord {
  const { restored: _, ...rest } = obj;
  return rest;
}

export function commitIngest(t: Tables, store: string, c: IngestCommit): { created: boolean } {
  const existing = t.objects.get(c.manifestId);
  if (existing) {
    // A second upload may carry digests the first did not compute.
    t.objects.putSync(c.manifestId, { ...existing, hashes: { ...c.object.hashes, ...existing.hashes } });
  } else {
    t.manifests.putSync(c.manifestId, c.manifest);
    t.objects.putSync(c.manifestId, { ...c.object, stores: {}, createdAt: new Date().toISOString() });
  }
  holdInStore(t, store, c.manifestId, c);
  return { created: !existing };
}

/**
 * Records the packs written to `store` and adds a holder of the object there; the first
 * holder in a store adds a reference there to each distinct chunk of the manifest.
 */
export function holdInStore(t: Tables, store: string, manifestId: Buffer, c: StoreWrite): void {
  const s = t.store(store);
  const obj = t.objects.get(manifestId);
  const manifest = t.manifests.get(manifestId);
  if (!obj || !manifest) throw new ChunkVanishedError(`manifest ${manifestId.toString("hex")}`);
  recordPacks(s, c.packs);
  const held = obj.stores[store] ?? 0;
  // Held there already: the chunks are referenced, and whatever this write stored duplicates
  // indexed ones (garbage for GC).
  if (held === 0) {
    for (const [hex, id] of distinctChunkIds(decodeManifest(manifest)))
      addReference(s, id, hex, c.written, () => nextSeq(t));
  }
  t.objects.putSync(manifestId, { ...settled(obj), stores: { ...obj.stores, [store]: held + 1 } });
}

export function releaseObject(t: Tables, store: string, manifestId: Buffer): { removed: boolean } {
  const obj = t.objects.get(manifestId);
  const held = obj?.stores[store] ?? 0;
  if (!obj || held === 0) return { removed: false };
  const stores = { ...obj.stores, [store]: held - 1 };
  if (held === 1) {
    delete stores[store];
    const manifest = t.manifests.get(manifestId);
    const s = t.store(store);
    if (manifest) for (const id of distinctChunkIds(decodeManifest(manifest)).values()) dropReference(s, id);
  }
  if (Object.keys(stores).length > 0) {
    t.objects.putSync(manifestId, { ...settled(obj), stores });
    return { removed: false };
  }
  t.manifests.removeSync(manifestId);
  t.objects.removeSync(manifestId);
  return { removed: true };
}

export function setRestoredHolders(t: Tables, manifestId: Buffer, holders: Record<string, number>): boolean {
  const obj = t.objects.get(manifestId);
  if (!obj?.restored) return false;
  const stores = { ...obj.stores };
  for (const [s, n] of Object.entries(holders)) if ((stores[s] ?? 0) > 0 && n >= 1) stores[s] = n;
  if (Object.entries(stores).every(([s, n]) => obj.stores[s] === n)) return false;
  t.objects.putSync(manifestId, { ...obj, stores });
  return true;
}

export function markDamaged(t: Tables, manifestId: Buffer): void {
  const obj = t.objects.get(manifestId);
  if (obj) t.objects.putSync(manifestId, { ...obj, damaged: true });
}

export function holdingsByStore(t: Tables): Map<string, StoreHoldings> {
  const out = new Map<string, StoreHoldings>();
  for (const { value } of t.objects.getRange()) {
    for (const [name, n] of Object.entries(value.stores)) {
      const h = out.get(name) ?? { objects: 0, holders: 0, logicalBytes: 0 };
      h.objects++;
      h.holders += n;
      h.logicalBytes += n * value.size;
      out.set(name, h);
    }
  }
  return out;
}

export function rebuildStore(t: Tables, store: string, input: RebuildInput): RebuildCounts {
  const s = t.store(store);
  const counts: RebuildCounts = { packs: 0, chunks: 0, manifests: 0, manifestsRestored: 0 };
  s.chunks.clearSync();
  s.packs.clearSync();
  s.condemned.clearSync();
  s.condemnedByPack.clearSync();
  for (const { id, bytes, hashes } of input.missing) {
    const m = decodeManifest(bytes);
    t.manifests.putSync(id, bytes);
    if (!t.objects.get(id)) {
      t.objects.putSync(id, {
        size: m.size,
        chunkCount: m.count,
        hashes,
        stores: { [store]: 1 },
        createdAt: new Date().toISOString(),
        restored: true,
      });
    }
    counts.manifestsRestored++;
  }
  for (const id of input.adopted) {
    const obj = t.objects.get(id);
    if (obj) t.objects.putSync(id, { ...obj, stores: { ...obj.stores, [store]: 1 } });
  }
  for (const p of input.packs) {
    s.packs.putSync(p.id, p.rec);
    for (const e of p.entries) {
      if (s.chunks.doesExist(e.id)) continue;
      const { offset, length, flags, sum } = e;
      s.chunks.putSync(e.id, encodeChunkRecord({ pack: p.id, offset, length, flags, sum, refs: 0 }));
      counts.chunks++;
    }
    counts.packs++;
  }
  for (const { key, value } of t.objects.getRange()) {
    if (!(value.stores[store] ?? 0)) continue;
    const manifest = t.manifests.get(key);
    if (!manifest) continue;
    counts.manifests++;
    for (const id of distinctChunkIds(decodeManifest(manifest)).values()) {
      const cur = s.chunks.get(id);
      if (!cur) continue; // fsck reports manifests whose chunks are gone
      const rec = decodeChunkRecord(cur);
      rec.refs++;
      s.chunks.putSync(id, encodeChunkRecord(rec));
    }
  }
  return counts;
}
