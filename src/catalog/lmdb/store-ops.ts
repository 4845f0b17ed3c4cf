/**
 * One store's chunk index in LMDB: references, condemnation and revival, relocation, trash.
 * Synchronous, for the catalog's write transactions; the rules are CatalogTx's (catalog.ts).
 */
import { ChunkVanishedError } from "../../errors.js";
import {
  manifestIdFromName,
  packIdFromName as packIdOfName,
  packName as packObjectName,
} from "../../store/names.js";
import type { ChunkLocation } from "../../store/pack-writer.js";
import type { ChunkMove } from "../catalog.js";
import type { ChunkRecord, PackRecord, TrashEntry } from "../store-index.js";
import { decodeChunkRecord, encodeChunkRecord } from "./chunk-record.js";
import type { StoreTables, Tables } from "./tables.js";

const EMPTY = Buffer.alloc(0);

export function getChunk(s: StoreTables, id: Uint8Array): ChunkRecord | undefined {
  const b = s.chunks.get(Buffer.from(id.buffer, id.byteOffset, id.byteLength));
  return b ? decodeChunkRecord(b) : undefined;
}

export function recordPacks(
  s: StoreTables,
  packs: readonly { id: Buffer; size: number; chunks: number }[],
): void {
  const createdAt = new Date().toISOString();
  for (const p of packs)
    s.packs.putSync(p.id, { size: p.size, chunks: p.chunks, createdAt } satisfies PackRecord);
}

/**
 * Adds a reference to chunk `id` in the store: indexed → one more; else the copy this write
 * made (`written`); else a condemned one, revived with its pack (out of the trash if it went
 * there). Anything else is gone: ChunkVanishedError.
 */
export function addReference(
  s: StoreTables,
  id: Buffer,
  hex: string,
  written: ReadonlyMap<string, ChunkLocation>,
  seq: () => number,
): void {
  const cur = s.chunks.get(id);
  if (cur) {
    const rec = decodeChunkRecord(cur);
    rec.refs++;
    s.chunks.putSync(id, encodeChunkRecord(rec));
    return;
  }
  const loc = written.get(hex);
  if (loc) {
    s.chunks.putSync(id, encodeChunkRecord({ ...loc, refs: 1 }));
    return;
  }
  const dead = s.condemned.get(id);
  if (!dead) throw new ChunkVanishedError(hex);
  const pack = Buffer.from(dead.pack, "hex");
  const revived = { pack, offset: dead.offset, length: dead.length, flags: dead.flags, refs: 1 };
  s.chunks.putSync(
    id,
    encodeChunkRecord(dead.sum === undefined ? revived : { ...revived, sum: BigInt(`0x${dead.sum}`) }),
  );
  s.condemned.removeSync(id);
  s.condemnedByPack.removeSync(Buffer.concat([pack, id]));
  // The pack is live again: out of the trash if it went there, and marked, so that a
  // collection that counted it empty before now leaves it be.
  const rec = s.packs.get(pack);
  const name = packObjectName(dead.pack);
  const size = rec?.size ?? s.trash.get(name)?.size ?? 0;
  s.packs.putSync(pack, {
    ...(rec ?? { size, chunks: 0, createdAt: new Date().toISOString() }),
    revived: seq(),
  });
  s.trash.removeSync(name);
}

/** One reference less (a chunk at zero stays indexed until GC condemns it). */
export function dropReference(s: StoreTables, id: Buffer): void {
  const cur = s.chunks.get(id);
  if (!cur) return;
  const rec = decodeChunkRecord(cur);
  rec.refs = Math.max(0, rec.refs - 1);
  s.chunks.putSync(id, encodeChunkRecord(rec));
}

export function condemn(
  s: StoreTables,
  ids: readonly Buffer[],
  seq: number,
): { condemned: number; bytes: number } {
  let condemned = 0;
  let bytes = 0;
  for (const id of ids) {
    const cur = s.chunks.get(id);
    if (!cur) continue;
    const rec = decodeChunkRecord(cur);
    if (rec.refs !== 0) continue;
    s.chunks.removeSync(id);
    // Condemned before, from another pack (then written again): that entry is superseded.
    const before = s.condemned.get(id);
    if (before) s.condemnedByPack.removeSync(Buffer.concat([Buffer.from(before.pack, "hex"), id]));
    s.condemned.putSync(id, {
      pack: rec.pack.toString("hex"),
      offset: rec.offset,
      length: rec.length,
      flags: rec.flags,
      seq,
      ...(rec.sum === undefined ? {} : { sum: rec.sum.toString(16) }),
    });
    s.condemnedByPack.putSync(Buffer.concat([rec.pack, id]), EMPTY);
    condemned++;
    bytes += rec.length;
  }
  return { condemned, bytes };
}

export function relocate(s: StoreTables, moves: readonly ChunkMove[]): boolean[] {
  return moves.map((m) => {
    const cur = s.chunks.get(m.id);
    const rec = cur ? decodeChunkRecord(cur) : undefined;
    const holds = m.from ? !!rec && rec.pack.equals(m.from.pack) && rec.offset === m.from.offset : !rec;
    if (holds && m.to) s.chunks.putSync(m.id, encodeChunkRecord({ ...m.to, refs: rec?.refs ?? m.refs ?? 0 }));
    return holds;
  });
}

/**
 * Trashes packs a collection found without a live chunk (their records go), except those a
 * commit revived a chunk in after `countedAt`. Returns how many went.
 */
export function trashPacks(
  s: StoreTables,
  packs: readonly { name: string; size: number }[],
  at: number,
  seq: number,
  countedAt: number,
): number {
  let n = 0;
  for (const o of packs) {
    const key = Buffer.from(packIdOfName(o.name) as string, "hex");
    const rec = s.packs.get(key);
    if (!rec || (rec.revived ?? 0) > countedAt) continue;
    s.packs.removeSync(key);
    s.trash.putSync(o.name, { at, after: at, size: o.size, seq } satisfies TrashEntry);
    n++;
  }
  return n;
}

/**
 * Trashes objects a collection found on the backend and not in the catalog, except those a
 * commit has recorded since (the listing raced it). Returns how many went.
 */
export function trashOrphans(
  t: Tables,
  store: string,
  objects: readonly { name: string; size: number }[],
  at: number,
  seq: number,
): number {
  const s = t.store(store);
  let n = 0;
  for (const o of objects) {
    if (wanted(t, store, o.name) || s.trash.doesExist(o.name)) continue;
    s.trash.putSync(o.name, { at, after: at, size: o.size, seq } satisfies TrashEntry);
    n++;
  }
  return n;
}

/** Removes the trash entry and the condemned chunks of the pack it names (if it names one). */
export function forget(s: StoreTables, name: string): void {
  s.trash.removeSync(name);
  const pack = packIdOfName(name);
  if (!pack) return;
  const start = Buffer.from(pack, "hex");
  const end = Buffer.concat([start, Buffer.alloc(33, 0xff)]);
  for (const key of [...s.condemnedByPack.getKeys({ start, end })]) {
    const id = key.subarray(16);
    if (s.condemned.get(id)?.pack === pack) s.condemned.removeSync(id);
    s.condemnedByPack.removeSync(key);
  }
}

/** Whether the catalog needs object `name` of `store`: a pack it records, a manifest it holds there. */
export function wanted(t: Tables, store: string, name: string): boolean {
  const pack = packIdOfName(name);
  if (pack) return t.store(store).packs.doesExist(Buffer.from(pack, "hex"));
  const manifest = manifestIdFromName(name);
  if (manifest) return (t.objects.get(Buffer.from(manifest, "hex"))?.stores[store] ?? 0) > 0;
  return true; // not the collection's (the store's format record, anything else)
}
