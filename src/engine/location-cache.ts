/**
 * Where this node last found chunks, for reads on a catalog whose lookups cost a round trip
 * (a shared PostgreSQL catalog): a download of an image the node has uploaded or served since
 * asks the database nothing. Each lookup answered and each chunk an ingest here wrote and
 * committed is remembered, the oldest forgotten past `capacity` entries.
 *
 * An entry can go stale (a collection repacks the chunk and deletes its old pack) but never
 * wrong: packs are immutable and never renamed, so while a pack exists it holds at that place
 * the bytes the entry names, and every read is checked. A read that finds a pack gone looks
 * its chunks up again in the catalog and corrects the entries (read.ts, fetchRelocating).
 */
import type { ChunkRecord } from "../catalog/store-index.js";
import type { Store } from "./stores.js";

export interface Located {
  store: Store;
  rec: ChunkRecord;
}

/** Entries kept by default: 65,536 chunks is 4 GiB of images at the 64 KiB average, ~25 MB (~400 B each, measured). */
export const DEFAULT_LOCATION_CACHE_ENTRIES = 65_536;

export class LocationCache {
  // Keyed by the id's bytes as a latin1 string: half the length of hex, and no copy of the id.
  private readonly entries = new Map<string, Located>();

  constructor(private readonly capacity: number) {}

  private static key(id: Uint8Array): string {
    return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString("latin1");
  }

  get(id: Uint8Array): Located | undefined {
    return this.entries.get(LocationCache.key(id));
  }

  set(id: Uint8Array, at: Located): void {
    const k = LocationCache.key(id);
    // Re-inserted, so that eviction in insertion order forgets what was least recently learnt.
    this.entries.delete(k);
    this.entries.set(k, at);
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
