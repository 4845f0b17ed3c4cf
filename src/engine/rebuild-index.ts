/**
 * Rebuilds one store's chunk index, pack records and refcounts from what is on its backend:
 * the packs (each lists its chunks in its trailer) and the manifest objects (on their own, or
 * carried in a pack). Used when the
 * index is lost or suspected wrong; the packs are the truth.
 *
 * Manifests found on the backend but missing from the catalog are restored, with the size and
 * whole-image hashes their object carries, and one holder in this store (the holder count is
 * not on the backend), marked `restored`. When a whole catalog is rebuilt store by store, a
 * restored object whose manifest the next store also carries gets a holder there too, so no
 * store's copy is left unreferenced. (An object the catalog knew, not held in this store, is
 * left as it is: its manifest here is a removed copy awaiting collection.) A chunk stored in several packs (two
 * concurrent ingests of the same new data) is indexed at the first pack in name order.
 */
import type { PackRecord, RebuildInput } from "../catalog/catalog.js";
import { decodeManifestObject } from "../catalog/manifest-object.js";
import { CorruptDataError } from "../errors.js";
import { chunkId } from "../hash/chunk-id.js";
import { manifestIdFromName, packIdFromName } from "../store/names.js";
import { readPackEntries } from "../store/pack-entries.js";
import { ENTRY_FLAG_MANIFEST, type PackEntry } from "../store/pack-format.js";
import type { Engine } from "./engine.js";
import type { Store } from "./stores.js";

export interface RebuildResult {
  packs: number;
  chunks: number;
  manifests: number;
  manifestsRestored: number;
  /** Packs that could not be read (named with the reason); their chunks are not indexed. */
  badPacks: { name: string; error: string }[];
}

export async function rebuildIndex(engine: Engine, store: Store): Promise<RebuildResult> {
  const { catalog } = engine;
  const { backend } = store;
  const result: RebuildResult = { packs: 0, chunks: 0, manifests: 0, manifestsRestored: 0, badPacks: [] };

  const packObjects: { name: string; id: string; size: number }[] = [];
  for await (const o of backend.list("packs/")) {
    const id = packIdFromName(o.name);
    if (id) packObjects.push({ name: o.name, id, size: o.size });
  }
  packObjects.sort((a, b) => (a.name < b.name ? -1 : 1));

  // Manifest objects: on their own under manifests/, or carried inside a pack.
  const manifestSources: { id: Buffer; read: () => Promise<Buffer> }[] = [];
  for await (const o of backend.list("manifests/")) {
    const id = manifestIdFromName(o.name);
    if (id) manifestSources.push({ id: Buffer.from(id, "hex"), read: () => backend.get(o.name, 0, o.size) });
  }

  const packsIndexed: { id: Buffer; rec: PackRecord; entries: PackEntry[] }[] = [];
  for (const p of packObjects) {
    try {
      const all = await readPackEntries(backend, p.name, p.size);
      const entries = all.filter((e) => (e.flags & ENTRY_FLAG_MANIFEST) === 0);
      for (const e of all) {
        if (e.flags & ENTRY_FLAG_MANIFEST) {
          manifestSources.push({ id: e.id, read: () => backend.get(p.name, e.offset, e.length) });
        }
      }
      packsIndexed.push({
        id: Buffer.from(p.id, "hex"),
        rec: { size: p.size, chunks: entries.length, createdAt: new Date().toISOString() },
        entries,
      });
    } catch (e) {
      result.badPacks.push({ name: p.name, error: (e as Error).message });
    }
  }

  const missing = new Map<string, RebuildInput["missing"][number]>();
  // Objects an earlier rebuild restored (from another store) that this store also carries.
  const adopted = new Map<string, Buffer>();
  for (const m of manifestSources) {
    const hex = m.id.toString("hex");
    const known = await catalog.getObject(m.id);
    if (known?.restored && !(known.stores[store.name] ?? 0)) adopted.set(hex, m.id);
    if (missing.has(hex) || (await catalog.getManifest(m.id))) continue;
    try {
      const { manifest, record } = decodeManifestObject(await m.read());
      if (!chunkId(manifest).equals(m.id)) continue; // a damaged manifest object restores nothing
      missing.set(hex, { id: m.id, bytes: manifest, hashes: record.hashes ?? {} });
    } catch (e) {
      if (!(e instanceof CorruptDataError || e instanceof SyntaxError)) throw e;
    }
  }

  const counts = await catalog.transact((tx) =>
    tx.rebuildStore(store.name, {
      packs: packsIndexed,
      missing: [...missing.values()],
      adopted: [...adopted.values()],
    }),
  );
  return { ...result, ...counts };
}
