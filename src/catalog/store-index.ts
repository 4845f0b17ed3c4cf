/**
 * One store's part of the catalog, as records: where each chunk sits in that store's packs
 * (with its reference count), the packs, and the trash. How they are laid out is the
 * implementation's (catalog/lmdb/chunk-record.ts for LMDB).
 */
import type { ChunkLocation } from "../store/pack-writer.js";

export interface ChunkRecord extends ChunkLocation {
  refs: number;
}

export interface PackRecord {
  size: number;
  chunks: number;
  createdAt: string;
  /**
   * The sequence number of the last revival of a condemned chunk in it: a collection that
   * counted it empty before then must not trash it.
   */
  revived?: number;
}

/** An object on the store's backend that garbage collection will delete. */
export interface TrashEntry {
  /**
   * When it went to the trash (ms since the epoch). A collection deletes it once its own grace
   * period has passed since then, so a shorter grace applies to what earlier runs trashed too.
   * Absent in entries written before it was recorded: `after` rules those.
   */
  at?: number;
  /** Not before this time (ms since the epoch): the grace period of the run that trashed it. */
  after: number;
  size: number;
  /**
   * The catalog's sequence number when it was trashed: it may be deleted only once no lease
   * that began before it is alive. Absent in entries written before leases: none waits.
   */
  seq?: number;
}

/** Whether a collection with `graceMs` of grace may delete `e` at time `now`. */
export function trashDue(e: TrashEntry, graceMs: number, now: number): boolean {
  return e.at !== undefined ? e.at + graceMs <= now : e.after <= now;
}
