/**
 * What tests read of a store's index, through the catalog's interfaces; and the damage they
 * do to it on purpose (the LMDB catalog's `damage`, as a lost or corrupted index would).
 */
import type { ChunkRecord, PackRecord, TrashEntry } from "../../src/catalog/catalog.js";
import { LmdbCatalog } from "../../src/catalog/lmdb/lmdb-catalog.js";
import type { Engine } from "../../src/engine/engine.js";

export async function chunksOf(engine: Engine, store?: string): Promise<{ id: Buffer; rec: ChunkRecord }[]> {
  const out: { id: Buffer; rec: ChunkRecord }[] = [];
  for await (const e of engine.store(store).index.scanChunks()) out.push(e);
  return out;
}

export async function packsOf(engine: Engine, store?: string): Promise<{ id: Buffer; rec: PackRecord }[]> {
  const out: { id: Buffer; rec: PackRecord }[] = [];
  for await (const e of engine.store(store).index.scanPacks()) out.push(e);
  return out;
}

export async function trashOf(
  engine: Engine,
  store?: string,
): Promise<{ name: string; entry: TrashEntry }[]> {
  const out: { name: string; entry: TrashEntry }[] = [];
  for await (const e of engine.store(store).index.scanTrash()) out.push(e);
  return out;
}

export async function chunkRecord(
  engine: Engine,
  id: Buffer,
  store?: string,
): Promise<ChunkRecord | undefined> {
  return (await engine.store(store).index.lookup([id]))[0];
}

function damage(engine: Engine) {
  if (!(engine.catalog instanceof LmdbCatalog)) throw new Error("damage is done to an LMDB catalog only");
  return engine.catalog.damage;
}

/** Forgets every chunk and pack of a store, as a lost index would. */
export function loseIndex(engine: Engine, store?: string): Promise<void> {
  return damage(engine).loseIndex(engine.store(store).name);
}

/** Forgets where one chunk is. */
export function dropChunk(engine: Engine, id: Buffer, store?: string): Promise<void> {
  return damage(engine).dropChunk(engine.store(store).name, id);
}
