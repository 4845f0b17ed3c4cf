/**
 * The memory every read in progress shares for its read-ahead. One download keeps its full
 * read-ahead (readAheadBytes, in segments of readSegmentBytes): that is what keeps a backend
 * busy. Many at once split the budget, with smaller segments, down to one small segment
 * each: a few hundred stalled or slow downloads then hold about the budget, not a read-ahead
 * each (measured: 220 unread downloads of one image took the server to ~1 GiB before).
 */
const MIN_SEGMENT_BYTES = 256 * 1024;

export class ReadBudget {
  private readers = 0;
  private held = 0;

  constructor(
    readonly totalBytes: number,
    readonly aheadBytes: number,
    readonly segmentBytes: number,
  ) {}

  /** A read begins; call the function returned when it ends. */
  enter(): () => void {
    this.readers++;
    let left = false;
    return () => {
      if (!left) this.readers--;
      left = true;
    };
  }

  /**
   * Whether a read that already has something queued may read further ahead: not while the
   * reads in progress together hold the whole budget. (A read with nothing queued always may:
   * every read moves.)
   */
  get room(): boolean {
    return this.held < this.totalBytes;
  }

  /** Bytes read ahead, or handed to a consumer that is not done with them yet. */
  hold(n: number): void {
    this.held += n;
  }

  release(n: number): void {
    this.held -= n;
  }

  /** Bytes held now (for metrics and tests). */
  get heldBytes(): number {
    return this.held;
  }

  /** Reads in progress. */
  get active(): number {
    return this.readers;
  }

  /** Bytes each read may keep in flight ahead of its consumer now. */
  get ahead(): number {
    return Math.min(this.aheadBytes, Math.floor(this.totalBytes / Math.max(1, this.readers)));
  }

  /**
   * The largest ranged read now: a read's share holds two, at full budget the configured size,
   * and the smallest when the budget is spent.
   */
  get segment(): number {
    if (!this.room) return MIN_SEGMENT_BYTES;
    return Math.max(MIN_SEGMENT_BYTES, Math.min(this.segmentBytes, Math.floor(this.ahead / 2)));
  }

  /** Whether reads are at their configured sizes (pooled, full-size buffers pay off then). */
  get unconstrained(): boolean {
    return this.segment === this.segmentBytes;
  }
}
