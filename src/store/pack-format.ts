/**
 * The pack file layout (docs/format.md has the full description):
 *
 *   header   16 bytes   "TSPACK01" magic, u32 format version, u32 reserved (0)
 *   chunks   the chunk bytes, back to back
 *   entries  N x 52 bytes: id (32) | offset u32 | length u32 | flags u32 | sum u64
 *            (version 1: N x 44 bytes, without the sum)
 *   footer   48 bytes   u32 N | u32 reserved | u64 entries offset |
 *                       entries hash (first 24 bytes of BLAKE3 of the entries) | "TSPKEND1"
 *
 * All integers little endian. Offsets are from the start of the pack. The footer is at a
 * fixed distance from the end, so a reader that knows only the pack's size can find the
 * entries and rebuild the chunk index from the packs alone.
 */
import { CorruptDataError } from "../errors.js";
import { CHUNK_ID_BYTES, chunkId } from "../hash/chunk-id.js";

/** The version written. Version 1 packs (no per-chunk sum) stay readable. */
export const PACK_VERSION = 2;
export const PACK_HEADER_BYTES = 16;
/** The size of an entry in a pack of each version. */
export const PACK_ENTRY_BYTES: Readonly<Record<number, number>> = { 1: 44, 2: 52 };
/** The size of an entry in the packs written now. */
export const ENTRY_BYTES = 52;
export const PACK_FOOTER_BYTES = 48;
const HEADER_MAGIC = Buffer.from("TSPACK01");
const FOOTER_MAGIC = Buffer.from("TSPKEND1");
const ENTRIES_HASH_BYTES = 24;

/** Per-chunk flags. */
export const CHUNK_FLAGS_NONE = 0;
/**
 * The stored bytes are a zstd frame of the chunk; the entry's length is the frame's. The
 * chunk's own length is in the manifests that use it, and its id is of the plain bytes.
 */
export const CHUNK_FLAG_ZSTD = 1;
/**
 * Not a chunk: the entry is a manifest object (the `manifests/` object's bytes, id = the
 * manifest id), carried in the pack its object's last chunks went into, so a small upload
 * costs one PUT instead of two. Never indexed as a chunk; rebuild-index restores it.
 */
export const ENTRY_FLAG_MANIFEST = 2;
/**
 * The entry (and the chunk record made from it) carries the chunk's fast checksum (chunkSum of
 * its plain bytes). Chunks stored before version 2, and moved since without being decoded, have
 * none: their reads are checked with BLAKE3.
 */
export const CHUNK_FLAG_SUM = 4;
/** Every flag bit a reader knows: a pack with others was written by a newer Tessera. */
const KNOWN_FLAGS = CHUNK_FLAG_ZSTD | ENTRY_FLAG_MANIFEST | CHUNK_FLAG_SUM;

export interface PackEntry {
  id: Buffer;
  offset: number;
  length: number;
  /** CHUNK_FLAG_SUM is set exactly when `sum` is. */
  flags: number;
  sum?: bigint;
}

export function encodePackHeader(): Buffer {
  const b = Buffer.alloc(PACK_HEADER_BYTES);
  HEADER_MAGIC.copy(b, 0);
  b.writeUInt32LE(PACK_VERSION, 8);
  return b;
}

/** Entries and footer for a pack whose chunk bytes end at `entriesOffset`. */
export function encodePackTrailer(entries: readonly PackEntry[], entriesOffset: number): Buffer {
  const out = Buffer.alloc(entries.length * ENTRY_BYTES + PACK_FOOTER_BYTES);
  entries.forEach((e, i) => {
    const at = i * ENTRY_BYTES;
    e.id.copy(out, at);
    out.writeUInt32LE(e.offset, at + 32);
    out.writeUInt32LE(e.length, at + 36);
    out.writeUInt32LE(e.flags, at + 40);
    out.writeBigUInt64LE(e.sum ?? 0n, at + 44);
  });
  const f = entries.length * ENTRY_BYTES;
  out.writeUInt32LE(entries.length, f);
  out.writeBigUInt64LE(BigInt(entriesOffset), f + 8);
  chunkId(out.subarray(0, f)).copy(out, f + 16, 0, ENTRIES_HASH_BYTES);
  FOOTER_MAGIC.copy(out, f + 40);
  return out;
}

/**
 * Where the entries are, from the footer of a pack whose entries are `entryBytes` each (its
 * version's); throws CorruptDataError on a bad footer.
 */
export function decodePackFooter(
  footer: Buffer,
  packSize: number,
  entryBytes: number,
): { count: number; entriesOffset: number } {
  if (footer.length !== PACK_FOOTER_BYTES || !footer.subarray(40).equals(FOOTER_MAGIC)) {
    throw new CorruptDataError("pack footer magic missing");
  }
  const count = footer.readUInt32LE(0);
  const entriesOffset = Number(footer.readBigUInt64LE(8));
  if (
    entriesOffset < PACK_HEADER_BYTES ||
    entriesOffset + count * entryBytes + PACK_FOOTER_BYTES !== packSize
  ) {
    throw new CorruptDataError("pack footer does not match the pack size");
  }
  return { count, entriesOffset };
}

/** Parses and checks the entries block against the footer's hash and the pack's bounds. */
export function decodePackEntries(entries: Buffer, footer: Buffer, entryBytes: number): PackEntry[] {
  const expected = footer.subarray(16, 16 + ENTRIES_HASH_BYTES);
  if (!chunkId(entries).subarray(0, ENTRIES_HASH_BYTES).equals(expected)) {
    throw new CorruptDataError("pack entries do not match their hash");
  }
  const entriesOffset = Number(footer.readBigUInt64LE(8));
  const out: PackEntry[] = [];
  for (let at = 0; at < entries.length; at += entryBytes) {
    const e: PackEntry = {
      id: Buffer.from(entries.subarray(at, at + CHUNK_ID_BYTES)),
      offset: entries.readUInt32LE(at + 32),
      length: entries.readUInt32LE(at + 36),
      flags: entries.readUInt32LE(at + 40),
    };
    if (entryBytes > 44 && (e.flags & CHUNK_FLAG_SUM) !== 0) e.sum = entries.readBigUInt64LE(at + 44);
    else e.flags &= ~CHUNK_FLAG_SUM;
    if (e.offset < PACK_HEADER_BYTES || e.offset + e.length > entriesOffset) {
      throw new CorruptDataError("pack entry points outside the chunk area");
    }
    if ((e.flags & ~KNOWN_FLAGS) !== 0) throw new CorruptDataError(`pack entry has unknown flags ${e.flags}`);
    out.push(e);
  }
  return out;
}

/** Checks the header of a pack read from a backend; returns the size of its entries. */
export function checkPackHeader(header: Buffer): number {
  const entryBytes = header.subarray(0, 8).equals(HEADER_MAGIC)
    ? PACK_ENTRY_BYTES[header.readUInt32LE(8)]
    : undefined;
  if (entryBytes === undefined) throw new CorruptDataError("not a Tessera pack of a known version");
  return entryBytes;
}

/** The entries of a whole pack held in memory (header, footer and entries checked). */
export function decodeWholePack(pack: Buffer): PackEntry[] {
  const entryBytes = checkPackHeader(pack.subarray(0, PACK_HEADER_BYTES));
  const footer = pack.subarray(pack.length - PACK_FOOTER_BYTES);
  const { count, entriesOffset } = decodePackFooter(footer, pack.length, entryBytes);
  return decodePackEntries(
    pack.subarray(entriesOffset, entriesOffset + count * entryBytes),
    footer,
    entryBytes,
  );
}
