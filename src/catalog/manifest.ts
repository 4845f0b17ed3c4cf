/**
 * Manifests: the ordered list of an object's chunks, in a compact binary encoding.
 *
 *   header  20 bytes  "TSMF" | u8 version | 3 reserved | u32 chunk count | u64 total size
 *   entry   u32 word: bits 0-30 chunk length, bit 31 set for an all-zero chunk;
 *           then the 32-byte chunk id, present only when bit 31 is clear
 *
 * All-zero chunks carry no id: they are never stored and are synthesized on read. A manifest
 * is immutable and named by the BLAKE3 of its encoding, so identical content from any tenant
 * gives the same manifest id.
 */
import { CorruptDataError } from "../errors.js";
import { CHUNK_ID_BYTES, chunkId } from "../hash/chunk-id.js";

const MAGIC = Buffer.from("TSMF");
export const MANIFEST_VERSION = 1;
const HEADER_BYTES = 20;
const ZERO_BIT = 0x80000000;

/** Accumulates entries while an ingest runs; grows by doubling, ~36 bytes per stored chunk. */
export class ManifestBuilder {
  private buf = Buffer.allocUnsafe(64 * 1024);
  private used = HEADER_BYTES;
  count = 0;
  size = 0;

  add(id: Uint8Array, length: number): void {
    this.reserve(4 + CHUNK_ID_BYTES);
    this.buf.writeUInt32LE(length, this.used);
    this.buf.set(id, this.used + 4);
    this.used += 4 + CHUNK_ID_BYTES;
    this.count++;
    this.size += length;
  }

  addZero(length: number): void {
    this.reserve(4);
    this.buf.writeUInt32LE((length | ZERO_BIT) >>> 0, this.used);
    this.used += 4;
    this.count++;
    this.size += length;
  }

  /** The ids of the stored chunks added so far (views: copy to keep one). */
  *chunkIds(): Generator<Buffer> {
    for (let at = HEADER_BYTES; at < this.used; ) {
      const word = this.buf.readUInt32LE(at);
      if (word & ZERO_BIT) {
        at += 4;
        continue;
      }
      yield this.buf.subarray(at + 4, at + 4 + CHUNK_ID_BYTES);
      at += 4 + CHUNK_ID_BYTES;
    }
  }

  /** The encoded manifest and its id. */
  finish(): { id: Buffer; bytes: Buffer } {
    MAGIC.copy(this.buf, 0);
    this.buf.writeUInt32LE(MANIFEST_VERSION, 4);
    this.buf.writeUInt32LE(this.count, 8);
    this.buf.writeBigUInt64LE(BigInt(this.size), 12);
    const bytes = Buffer.from(this.buf.subarray(0, this.used));
    return { id: chunkId(bytes), bytes };
  }

  private reserve(n: number): void {
    if (this.used + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(this.buf.length * 2);
    this.buf.copy(next, 0, 0, this.used);
    this.buf = next;
  }
}

/** A decoded manifest: parallel arrays, so a large one costs a few bytes per chunk. */
export interface Manifest {
  bytes: Buffer;
  size: number;
  count: number;
  /** Chunk lengths. */
  lengths: Uint32Array;
  /** Start of each chunk in the object; offsets[count] === size. */
  offsets: Float64Array;
  /** Position of each chunk's id in `bytes`, or -1 for an all-zero chunk. */
  idAt: Int32Array;
}

export function chunkIdOf(m: Manifest, i: number): Buffer | undefined {
  const at = m.idAt[i];
  return at < 0 ? undefined : m.bytes.subarray(at, at + CHUNK_ID_BYTES);
}

/** Parses a manifest, checking its structure (not its id: callers compare that). */
export function decodeManifest(bytes: Buffer): Manifest {
  if (bytes.length < HEADER_BYTES || !bytes.subarray(0, 4).equals(MAGIC)) {
    throw new CorruptDataError("not a manifest");
  }
  if (bytes.readUInt32LE(4) !== MANIFEST_VERSION) throw new CorruptDataError("unknown manifest version");
  const count = bytes.readUInt32LE(8);
  const size = Number(bytes.readBigUInt64LE(12));
  const lengths = new Uint32Array(count);
  const offsets = new Float64Array(count + 1);
  const idAt = new Int32Array(count);
  let at = HEADER_BYTES;
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (at + 4 > bytes.length) throw new CorruptDataError("manifest truncated");
    const word = bytes.readUInt32LE(at);
    at += 4;
    const len = word & ~ZERO_BIT;
    lengths[i] = len;
    offsets[i] = off;
    off += len;
    if (word & ZERO_BIT) {
      idAt[i] = -1;
    } else {
      if (at + CHUNK_ID_BYTES > bytes.length) throw new CorruptDataError("manifest truncated");
      idAt[i] = at;
      at += CHUNK_ID_BYTES;
    }
  }
  offsets[count] = off;
  if (at !== bytes.length || off !== size) throw new CorruptDataError("manifest length mismatch");
  return { bytes, size, count, lengths, offsets, idAt };
}

/** The distinct non-zero chunk ids of a manifest, as hex keys mapped to their ids. */
export function distinctChunkIds(m: Manifest): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (let i = 0; i < m.count; i++) {
    const id = chunkIdOf(m, i);
    if (!id) continue;
    const k = id.toString("hex");
    if (!out.has(k)) out.set(k, id);
  }
  return out;
}
