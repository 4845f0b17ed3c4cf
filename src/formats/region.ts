/**
 * Bounded captures of a byte stream seen once, front to back: a region at a fixed offset and
 * the stream's last bytes. Inspectors keep only these, so their memory does not grow with
 * the image, whatever a hostile header claims.
 */

/** No region is larger than this: VMDK's embedded descriptor limit (qemu's, 1 MiB - 1). */
export const MAX_REGION = 1024 * 1024;

/** The bytes [offset, offset + length) of the stream. */
export class Region {
  readonly data: Buffer;
  private filled = 0;
  /** The stream passed the region's start before the region existed: it can never fill. */
  missed = false;

  constructor(
    readonly offset: number,
    length: number,
  ) {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`bad region offset ${offset}`);
    if (!Number.isSafeInteger(length) || length < 0 || length > MAX_REGION) {
      throw new RangeError(`bad region length ${length}`);
    }
    this.data = Buffer.alloc(length);
  }

  get complete(): boolean {
    return this.filled === this.data.length;
  }

  /** How many bytes have arrived (all of them once the region is complete). */
  get length(): number {
    return this.filled;
  }

  /** The bytes captured so far. */
  get bytes(): Buffer {
    return this.data.subarray(0, this.filled);
  }

  /** Offers the piece of the stream that starts at `at`. */
  capture(piece: Uint8Array, at: number): void {
    if (this.complete || this.missed) return;
    const want = this.offset + this.filled;
    if (at > want) {
      this.missed = true;
      return;
    }
    const end = at + piece.length;
    if (end <= want) return;
    const take = Math.min(end, this.offset + this.data.length) - want;
    this.data.set(piece.subarray(want - at, want - at + take), this.filled);
    this.filled += take;
  }
}

/** The last `length` bytes of the stream (fewer if the stream is shorter). */
export class Tail {
  private readonly ring: Buffer;
  private seen = 0;

  constructor(readonly length: number) {
    this.ring = Buffer.alloc(length);
  }

  capture(piece: Uint8Array): void {
    const n = this.length;
    const p = piece.length >= n ? piece.subarray(piece.length - n) : piece;
    const at = (this.seen + piece.length - p.length) % n;
    const first = Math.min(p.length, n - at);
    this.ring.set(p.subarray(0, first), at);
    if (first < p.length) this.ring.set(p.subarray(first), 0);
    this.seen += piece.length;
  }

  /** The captured tail, oldest byte first. */
  bytes(): Buffer {
    const n = this.length;
    if (this.seen <= n) return Buffer.from(this.ring.subarray(0, this.seen));
    const at = this.seen % n;
    return Buffer.concat([this.ring.subarray(at), this.ring.subarray(0, at)]);
  }
}
