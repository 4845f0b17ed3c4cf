/**
 * Copies of chunks that must outlive the chunker's window: where a lookup costs a round trip,
 * ingest gathers a batch of chunks and cuts the next while the batch's lookup is in flight.
 * The copies go end to end into a few reused slabs, not into a fresh buffer each: a
 * Buffer.from per chunk (16,000 per GiB) cost 1.4 s of allocation per GiB and doubled the
 * garbage collector's time, measured on a 1 GiB HTTP upload with the PostgreSQL catalog.
 */
import type { BufferPool } from "../store/buffer-pool.js";

export class HeldChunks {
  private slab: Buffer | undefined;
  private used = 0;
  private slabs: Buffer[] = [];

  /** `pool`'s buffers must hold at least the largest chunk. */
  constructor(private readonly pool: BufferPool) {}

  /** A copy of `view`, valid until the slab holding it is released. */
  copy(view: Uint8Array): Buffer {
    if (!this.slab || this.used + view.length > this.slab.length) {
      this.slab = this.pool.take();
      this.used = 0;
      this.slabs.push(this.slab);
    }
    const out = this.slab.subarray(this.used, this.used + view.length);
    out.set(view);
    this.used += view.length;
    return out;
  }

  /** The slabs holding every copy made since the last seal; the next copy starts a new slab. */
  seal(): Buffer[] {
    const sealed = this.slabs;
    this.slabs = [];
    this.slab = undefined;
    return sealed;
  }

  /** Returns sealed slabs once nothing reads the copies in them. */
  release(slabs: Buffer[]): void {
    for (const s of slabs) this.pool.give(s);
  }
}
