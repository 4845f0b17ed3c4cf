/**
 * The chunk index's value, 40 bytes:
 *
 *   pack id (16) | offset u32 | length u32 | flags u32 | refs u32 | sum u64   (little-endian)
 *
 * `sum` is meaningful only when flags has CHUNK_FLAG_SUM. Records written before the fast
 * checksum are 32 bytes (no sum) and stay readable.
 */
import { CHUNK_FLAG_SUM } from "../../store/pack-format.js";
import type { ChunkRecord } from "../store-index.js";

const CHUNK_RECORD_BYTES = 40;

export function encodeChunkRecord(r: ChunkRecord): Buffer {
  const b = Buffer.allocUnsafe(CHUNK_RECORD_BYTES);
  r.pack.copy(b, 0);
  const hasSum = r.sum !== undefined;
  b.writeUInt32LE(r.offset, 16);
  b.writeUInt32LE(r.length, 20);
  b.writeUInt32LE(hasSum ? r.flags | CHUNK_FLAG_SUM : r.flags & ~CHUNK_FLAG_SUM, 24);
  b.writeUInt32LE(r.refs, 28);
  b.writeBigUInt64LE(r.sum ?? 0n, 32);
  return b;
}

export function decodeChunkRecord(b: Buffer): ChunkRecord {
  const rec: ChunkRecord = {
    pack: Buffer.from(b.subarray(0, 16)),
    offset: b.readUInt32LE(16),
    length: b.readUInt32LE(20),
    flags: b.readUInt32LE(24),
    refs: b.readUInt32LE(28),
  };
  if (b.length >= CHUNK_RECORD_BYTES && (rec.flags & CHUNK_FLAG_SUM) !== 0) rec.sum = b.readBigUInt64LE(32);
  else rec.flags &= ~CHUNK_FLAG_SUM;
  return rec;
}
