import { randomBytes } from "node:crypto";
import type { ObjectBackend } from "./backend.js";
import { BufferPool } from "./buffer-pool.js";
import { packName } from "./names.js";
import {
  CHUNK_FLAG_SUM,
  CHUNK_FLAGS_NONE,
  ENTRY_BYTES,
  ENTRY_FLAG_MANIFEST,
  encodePackHeader,
  encodePackTrailer,
  PACK_FOOTER_BYTES,
  PACK_HEADER_BYTES,
  type PackEntry,
} from "./pack-format.js";

/** Where a chunk went: a pack (by 16-byte id) and its byte range there. */
export interface ChunkLocation {
  pack: Buffer;
  offset: number;
  length: number;
  /** CHUNK_FLAG_SUM is set exactly when `sum` is. */
  flags: number;
  /** The chunk's fast checksum (hash/chunk-sum.ts), when known. */
  sum?: bigint;
}

/** A sealed pack that reached the backend. */
export interface WrittenPack {
  id: Buffer;
  size: number;
  chunks: number;
}

export interface PackWriterOptions {
  /** Target pack size in bytes; a pack is sealed before a chunk would take it past this. */
  packSize: number;
  /** Sealed packs allowed in flight before `drain()` waits (memory is about this many packs). */
  maxInFlight?: number;
  /** Where pack buffers come from and return to (of `packSize` bytes). */
  buffers?: BufferPool;
}

/**
 * Appends chunks to pack buffers and puts each sealed pack on the backend in the background.
 * One writer belongs to one ingest. `add` is synchronous (it copies the chunk, so the caller's
 * buffer may be reused); `drain` is the backpressure point; `finish` seals the last pack and
 * resolves when every pack is durable. Pack ids are random: two ingests never share a pack.
 */
export class PackWriter {
  private readonly packSize: number;
  private readonly maxInFlight: number;
  private readonly buffers: BufferPool;
  private buf: Buffer | undefined;
  private used = 0;
  private entries: PackEntry[] = [];
  /** Entries of the open pack that are manifests, not chunks. */
  private manifests = 0;
  private packId: Buffer = randomBytes(16);
  private inFlight = new Set<Promise<void>>();
  private failure: unknown;
  readonly written: WrittenPack[] = [];
  /** Ids of the packs sealed so far, whether or not their put has finished. */
  private readonly started: Buffer[] = [];

  constructor(
    private readonly backend: ObjectBackend,
    options: PackWriterOptions,
  ) {
    this.packSize = options.packSize;
    this.maxInFlight = options.maxInFlight ?? 1;
    this.buffers = options.buffers ?? new BufferPool(this.packSize, 0);
    if (this.buffers.size !== this.packSize) throw new RangeError("buffer pool size differs from pack size");
  }

  /**
   * Copies a chunk into the open pack and returns where it will live; `sum` is the chunk's
   * fast checksum (of its plain bytes), recorded with it when given.
   */
  add(id: Buffer, data: Uint8Array, flags = CHUNK_FLAGS_NONE, sum?: bigint): ChunkLocation {
    this.throwIfFailed();
    // The trailer goes into the same buffer, so the pack is one contiguous (aligned) write.
    const trailer = (this.entries.length + 1) * ENTRY_BYTES + PACK_FOOTER_BYTES;
    if (this.buf && this.used + data.length + trailer > this.packSize) this.seal();
    if (PACK_HEADER_BYTES + data.length + ENTRY_BYTES + PACK_FOOTER_BYTES > this.packSize) {
      throw new RangeError("chunk larger than a pack");
    }
    if (!this.buf) {
      this.buf = this.buffers.take();
      encodePackHeader().copy(this.buf, 0);
      this.used = PACK_HEADER_BYTES;
    }
    const offset = this.used;
    this.buf.set(data, offset);
    this.used += data.length;
    const entry = { id: Buffer.from(id), offset, length: data.length, flags: flags & ~CHUNK_FLAG_SUM };
    if (sum === undefined) {
      this.entries.push(entry);
      return { pack: this.packId, offset, length: data.length, flags: entry.flags };
    }
    entry.flags |= CHUNK_FLAG_SUM;
    this.entries.push({ ...entry, sum });
    return { pack: this.packId, offset, length: data.length, flags: entry.flags, sum };
  }

  /**
   * Puts a manifest object into the open pack if one is open and it fits there (see
   * ENTRY_FLAG_MANIFEST); false otherwise, and the caller stores it on its own. It rides
   * with the pack's chunks: durable when `finish` resolves.
   */
  addManifest(id: Buffer, parts: readonly Uint8Array[]): boolean {
    this.throwIfFailed();
    const length = parts.reduce((n, p) => n + p.length, 0);
    const trailer = (this.entries.length + 1) * ENTRY_BYTES + PACK_FOOTER_BYTES;
    if (!this.buf || this.used + length + trailer > this.packSize) return false;
    const offset = this.used;
    for (const p of parts) {
      this.buf.set(p, this.used);
      this.used += p.length;
    }
    this.entries.push({ id: Buffer.from(id), offset, length, flags: ENTRY_FLAG_MANIFEST });
    this.manifests++;
    return true;
  }

  /** The names of every pack this writer has started: sealed, being written, or open. */
  names(): string[] {
    const out = this.started.map((id) => packName(id.toString("hex")));
    if (this.buf) out.push(packName(this.packId.toString("hex")));
    return out;
  }

  /** Waits while too many sealed packs are still being written. */
  async drain(): Promise<void> {
    while (this.inFlight.size > this.maxInFlight) {
      await Promise.race(this.inFlight);
    }
    this.throwIfFailed();
  }

  /** Seals the open pack and waits for every pack to be durable. */
  async finish(): Promise<WrittenPack[]> {
    if (this.entries.length > 0) this.seal();
    await Promise.all(this.inFlight);
    this.throwIfFailed();
    return this.written;
  }

  /** Stops accepting chunks; waits for puts already started so nothing writes behind the caller. */
  async abort(): Promise<void> {
    if (this.buf) this.buffers.give(this.buf);
    this.buf = undefined;
    this.entries = [];
    await Promise.allSettled(this.inFlight);
  }

  private seal(): void {
    const buf = this.buf as Buffer;
    const trailer = encodePackTrailer(this.entries, this.used);
    trailer.copy(buf, this.used); // add() kept room for it
    const pack: WrittenPack = {
      id: this.packId,
      size: this.used + trailer.length,
      chunks: this.entries.length - this.manifests,
    };
    this.started.push(pack.id);
    const p = this.backend
      .put(packName(pack.id.toString("hex")), [buf.subarray(0, pack.size)])
      .then(
        () => {
          this.written.push(pack);
        },
        (e) => {
          this.failure ??= e;
        },
      )
      .finally(() => {
        this.inFlight.delete(p);
        this.buffers.give(buf);
      });
    this.inFlight.add(p);
    this.buf = undefined;
    this.entries = [];
    this.manifests = 0;
    this.packId = randomBytes(16);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
