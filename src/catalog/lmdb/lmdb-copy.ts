/**
 * Whole-catalog copies out of and into LMDB (CatalogCopy in ../catalog-copy.ts), over the
 * tables of tables.ts: an export walks each database in key order; an import writes batches of
 * items, each batch one write transaction, rebuilding what LMDB derives from the records (the
 * image sort indexes, tasks by image, condemned chunks by pack).
 *
 * The meta key "layout" is not exported: it is the version of these tables (LmdbCatalog's
 * upgradeLayout), not catalog data, and means nothing elsewhere. An import writes the current
 * one, as every other source is at the current layout.
 */
import { TesseraError } from "../../errors.js";
import {
  batches,
  byteOrder,
  type CatalogItem,
  CatalogNotEmptyError,
  type KindCounts,
  zeroCounts,
} from "../catalog-copy.js";
import { IMAGE_SORT_KEYS, indexValue } from "../image-records.js";
import { decodeChunkRecord, encodeChunkRecord } from "./chunk-record.js";
import { ownerKey, putMember, putTask } from "./records.js";
import type { StoreTables, Tables } from "./tables.js";

const EMPTY = Buffer.alloc(0);

/** The per-store databases, by the prefix of their names (tables.ts). */
const STORE_DB = /^(chunks|packs|trash|condemned|doomed)@(.+)$/;

/** The stores the environment has databases of, whether or not this process opened them yet. */
export function lmdbStoreNames(t: Tables): string[] {
  const names = new Set<string>();
  // The unnamed root database lists the names of the named ones (LMDB keeps them there).
  for (const key of t.root.getKeys()) {
    const m = typeof key === "string" ? STORE_DB.exec(key) : null;
    if (m) names.add(m[2] as string);
  }
  return [...names].sort(byteOrder);
}

function storeTables(s: StoreTables) {
  return [s.chunks, s.packs, s.trash, s.condemned, s.condemnedByPack];
}

export function lmdbIsEmpty(t: Tables): boolean {
  const global = [t.meta, t.manifests, t.objects, t.images, t.members, t.usage, t.tasks, t.leases];
  global.push(t.namespaces, t.resourceTypes);
  const stores = lmdbStoreNames(t).flatMap((n) => storeTables(t.store(n)));
  return [...global, ...stores].every((db) => db.getCount({ limit: 1 }) === 0);
}

export function lmdbCounts(t: Tables): KindCounts {
  const c = zeroCounts();
  c.meta = t.meta.getCount() - (t.meta.doesExist("layout") ? 1 : 0);
  for (const name of lmdbStoreNames(t)) {
    const s = t.store(name);
    c.chunk += s.chunks.getCount();
    c.pack += s.packs.getCount();
    c.trash += s.trash.getCount();
    c.condemned += s.condemned.getCount();
  }
  c.manifest = t.manifests.getCount();
  c.object = t.objects.getCount();
  c.image = t.images.getCount();
  c.member = t.members.getCount();
  c.task = t.tasks.getCount();
  c.usage = t.usage.getCount();
  c.namespace = t.namespaces.getCount();
  c.resource_type = t.resourceTypes.getCount();
  return c;
}

/**
 * Every record but leases and the layout, in ITEM_KINDS order. `layout`: the current one; a
 * catalog at an older layout is refused (a service start upgrades it first), since its records
 * are not in the shape the items describe.
 */
export async function* exportLmdb(t: Tables, layout: number): AsyncGenerator<CatalogItem> {
  const found = t.meta.get("layout");
  if (t.meta.get("format") !== undefined && found !== layout) {
    throw new TesseraError(
      "catalog_layout",
      `the LMDB catalog's layout is ${String(found)}, older than this Tessera's ${layout}: start the service on it once (that upgrades it), stop it, then migrate`,
    );
  }
  for (const { key, value } of t.meta.getRange()) {
    if (key !== "layout") yield { kind: "meta", key, value };
  }
  for (const store of lmdbStoreNames(t)) {
    const s = t.store(store);
    for (const { key, value } of s.chunks.getRange())
      yield { kind: "chunk", store, id: Buffer.from(key), rec: decodeChunkRecord(value) };
    for (const { key, value } of s.packs.getRange())
      yield { kind: "pack", store, id: Buffer.from(key), rec: value };
    for (const { key, value } of s.trash.getRange()) yield { kind: "trash", store, name: key, entry: value };
    for (const { key, value } of s.condemned.getRange()) {
      const { pack, sum, ...rest } = value;
      const rec = {
        ...rest,
        pack: Buffer.from(pack, "hex"),
        ...(sum === undefined ? {} : { sum: BigInt(`0x${sum}`) }),
      };
      yield { kind: "condemned", store, id: Buffer.from(key), rec };
    }
  }
  for (const { key, value } of t.manifests.getRange())
    yield { kind: "manifest", id: Buffer.from(key), bytes: Buffer.from(value) };
  for (const { key, value } of t.objects.getRange())
    yield { kind: "object", id: Buffer.from(key), obj: value };
  for (const { value } of t.images.getRange()) yield { kind: "image", rec: value };
  for (const { key, value } of t.members.getRange())
    yield { kind: "member", member: { ...value, image_id: key[0], member_id: key[1] } };
  for (const { value } of t.tasks.getRange()) yield { kind: "task", task: value };
  // Keys are "o:" and the owner (records.ts ownerKey).
  for (const { key, value } of t.usage.getRange()) yield { kind: "usage", owner: key.slice(2), usage: value };
  for (const { value } of t.namespaces.getRange()) yield { kind: "namespace", ns: value };
  for (const { value } of t.resourceTypes.getRange()) yield { kind: "resource_type", rt: value };
}

/** Writes one item (inside a write transaction). */
function put(t: Tables, item: CatalogItem): void {
  switch (item.kind) {
    case "meta":
      // The layout is this catalog's own (set once the import ends), never a source's.
      if (item.key !== "layout") t.meta.putSync(item.key, item.value);
      return;
    case "chunk":
      t.store(item.store).chunks.putSync(item.id, encodeChunkRecord(item.rec));
      return;
    case "pack":
      t.store(item.store).packs.putSync(item.id, item.rec);
      return;
    case "trash":
      t.store(item.store).trash.putSync(item.name, item.entry);
      return;
    case "condemned": {
      const s = t.store(item.store);
      const { pack, sum, ...rest } = item.rec;
      const hex = pack.toString("hex");
      s.condemned.putSync(item.id, {
        ...rest,
        pack: hex,
        ...(sum === undefined ? {} : { sum: sum.toString(16) }),
      });
      s.condemnedByPack.putSync(Buffer.concat([pack, item.id]), EMPTY);
      return;
    }
    case "manifest":
      t.manifests.putSync(item.id, item.bytes);
      return;
    case "object":
      t.objects.putSync(item.id, item.obj);
      return;
    case "image":
      // The record as is, and its sort index entries; its usage comes as its own items.
      for (const k of IMAGE_SORT_KEYS)
        t.imageIndexes[k].putSync([indexValue(item.rec, k), item.rec.id], EMPTY);
      t.images.putSync(item.rec.id, item.rec);
      return;
    case "member":
      putMember(t, item.member);
      return;
    case "task":
      putTask(t, item.task);
      return;
    case "usage":
      t.usage.putSync(ownerKey(item.owner), item.usage);
      return;
    case "namespace":
      t.namespaces.putSync(item.ns.namespace, item.ns);
      return;
    case "resource_type":
      t.resourceTypes.putSync(item.rt.name, item.rt);
      return;
  }
}

/**
 * Writes `items` into these tables, which must be empty (`where` names them in the refusal).
 * Each batch is one transaction: a failure part way leaves the batches before it, so the
 * caller imports into a directory it can throw away (the migrate command does).
 */
export async function importLmdb(
  t: Tables,
  where: string,
  layout: number,
  items: AsyncIterable<CatalogItem>,
  onItems?: (done: number) => void,
): Promise<KindCounts> {
  if (!lmdbIsEmpty(t)) throw new CatalogNotEmptyError(where);
  const counts = zeroCounts();
  let done = 0;
  for await (const batch of batches(items)) {
    // Per-store databases are opened before the transaction: one created inside it would be
    // forgotten if it rolled back (Tables.forgetStores), and nothing here tracks that.
    for (const item of batch) if ("store" in item) t.store(item.store);
    await t.root.transaction(() => {
      for (const item of batch) put(t, item);
    });
    for (const item of batch) if (item.kind !== "meta" || item.key !== "layout") counts[item.kind]++;
    done += batch.length;
    onItems?.(done);
  }
  if (done > 0) await t.meta.put("layout", layout);
  return counts;
}
