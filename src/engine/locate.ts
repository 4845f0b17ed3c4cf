/**
 * Where a read finds each chunk: the first store in read order whose index holds it (or, for a
 * read with preferred stores, in that order), through the node's location cache where it has
 * one. read.ts plans its segments from what this answers.
 */
import type { Engine } from "./engine.js";
import { locateChunks, type Store } from "./stores.js";

/** The engine's stores with `prefer`'s first (names not among them are the caller's to refuse). */
export function preferredOrder(engine: Engine, prefer: readonly string[]): Store[] {
  const first = prefer.flatMap((n) => engine.stores.get(n) ?? []);
  return [...new Set([...first, ...engine.stores.values()])];
}

export type Located = Awaited<ReturnType<typeof locateChunks>>;

/**
 * locateChunks, through the node's location cache where it has one: only the ids it does not
 * know go to the catalog, and what the catalog answers is remembered. `fresh`: ask the catalog
 * for every id, correcting what the cache held.
 */
export async function locateRemembered(
  engine: Engine,
  ids: readonly Buffer[],
  fresh: boolean,
  order?: Store[],
): Promise<Located> {
  if (order) return locateChunks(order, ids);
  const cache = engine.locations;
  if (!cache) return locateChunks(engine.stores.values(), ids);
  const out: Located = new Array(ids.length).fill(undefined);
  const asked: number[] = [];
  ids.forEach((id, i) => {
    const at = fresh ? undefined : cache.get(id);
    if (at) out[i] = at;
    else asked.push(i);
  });
  if (asked.length === 0) return out;
  const found = await locateChunks(
    engine.stores.values(),
    asked.map((i) => ids[i] as Buffer),
  );
  asked.forEach((i, k) => {
    const at = found[k];
    out[i] = at;
    // Unreferenced copies are a collection's to delete: not worth remembering.
    if (at && at.rec.refs > 0) cache.set(ids[i] as Buffer, at);
  });
  return out;
}
