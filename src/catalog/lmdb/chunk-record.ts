/**
 * The chunk index's value, 32 bytes:
 *
 *   pack id (16) | offset u32 | length u32 | flags u32 | refs u32   (little-endian)
 */
import type { ChunkRecord } from "../store-index.js";

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
