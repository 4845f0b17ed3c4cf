/**
 * One store's part of the catalog: where each chunk sits in that store's packs, and the packs.
 *
 *   chunks@S  chunk id (32 B) → 32 B  pack id (16) | offset u32 | length u32 | flags u32 | refs u32
 *   packs@S   pack id (16 B) → JSON   { size, chunks, createdAt }
 *   trash@S   object name → JSON      { at, after, size }: when it was trashed, when a collection
 *                                     with the grace it had may delete it, its size
 */
import type { Database } from "lmdb";
import type { ChunkLocation } from "../store/pack-writer.js";

export interface ChunkRecord extends ChunkLocation {
  refs: number;
}

export interface PackRecord {
  size: number;
  chunks: number;
  createdAt: string;
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
}

/** Whether a collection with `graceMs` of grace may delete `e` at time `now`. */
export function trashDue(e: TrashEntry, graceMs: number, now: number): boolean {
  return e.at !== undefined ? e.at + graceMs <= now : e.after <= now;
}

const CHUNK_RECORD_BYTES = 32;

export function encodeChunkRecord(r: ChunkRecord): Buffer {
  const b = Buffer.allocUnsafe(CHUNK_RECORD_BYTES);
  r.pack.copy(b, 0);
  b.writeUInt32LE(r.offset, 16);
  b.writeUInt32LE(r.length, 20);
  b.writeUInt32LE(r.flags, 24);
  b.writeUInt32LE(r.refs, 28);
  return b;
}

export function decodeChunkRecord(b: Buffer): ChunkRecord {
  return {
    pack: Buffer.from(b.subarray(0, 16)),
    offset: b.readUInt32LE(16),
    length: b.readUInt32LE(20),
    flags: b.readUInt32LE(24),
    refs: b.readUInt32LE(28),
  };
}

export class StoreIndex {
  constructor(
    readonly name: string,
    readonly chunks: Database<Buffer, Buffer>,
    readonly packs: Database<PackRecord, Buffer>,
    readonly trash: Database<TrashEntry, string>,
  ) {}

  getChunk(id: Uint8Array): ChunkRecord | undefined {
    const b = this.chunks.get(Buffer.from(id.buffer, id.byteOffset, id.byteLength));
    return b ? decodeChunkRecord(b) : undefined;
  }

  /** Inside a write transaction: records packs just written to the store. */
  recordPacks(packs: readonly { id: Buffer; size: number; chunks: number }[]): void {
    const createdAt = new Date().toISOString();
    for (const p of packs) this.packs.putSync(p.id, { size: p.size, chunks: p.chunks, createdAt });
  }

  hasChunk(id: Uint8Array): boolean {
    return this.chunks.doesExist(Buffer.from(id.buffer, id.byteOffset, id.byteLength));
  }
}
