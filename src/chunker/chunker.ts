import { firstCutJs } from "./cut-points-js.js";
import { GEAR_SCAN_WASM_BASE64 } from "./gear-scan-wasm.js";
import {
  type ChunkerParams,
  DEFAULT_CHUNKER_PARAMS,
  GEAR_HI,
  GEAR_LO,
  masksFor,
  validateChunkerParams,
} from "./params.js";

interface GearScan {
  memory: WebAssembly.Memory;
  resetFp(): void;
  scan(p: number, end: number, maskHi: number): number;
}

const TABLE_BYTES = 2048;
const wasmModule = new WebAssembly.Module(Buffer.from(GEAR_SCAN_WASM_BASE64, "base64"));

function instantiate(): GearScan {
  const inst = new WebAssembly.Instance(wasmModule, {});
  const ex = inst.exports as unknown as GearScan;
  // The table as little-endian i64s: low word, then high word.
  const words = new Uint32Array(ex.memory.buffer, 0, 512);
  for (let i = 0; i < 256; i++) {
    words[2 * i] = GEAR_LO[i];
    words[2 * i + 1] = GEAR_HI[i] >>> 0;
  }
  return ex;
}

/**
 * Receives each chunk. `chunk` is a view into the chunker's own buffer: it stays valid until
 * the next push or finish when the piece pushed was at most `stablePiece` bytes, else only
 * during the call. Copy what must outlive that.
 */
export type ChunkSink = (chunk: Uint8Array) => void;

/**
 * A streaming FastCDC chunker. Bytes go in as pieces of any size; chunks come out through a
 * synchronous callback, at the same cut points whatever the piece sizes were (the
 * fingerprint and scan position survive between pieces).
 *
 * Each instance owns a WebAssembly instance whose memory holds the gear table and a buffer
 * of a few MiB, so memory use is fixed no matter how long the stream is.
 */
export class Chunker {
  readonly params: ChunkerParams;
  private readonly wasm: GearScan;
  private readonly mem: Uint8Array;
  private readonly maskS: number;
  private readonly maskL: number;
  private readonly cap: number;
  /** Buffer offsets (relative to TABLE_BYTES) of the current chunk's start and the data end. */
  private start = 0;
  private end = 0;
  /** Offset up to which the current chunk has been scanned; -1 until scanning begins. */
  private scanned = -1;
  /**
   * True when the cut rule, run over `max` zero bytes, finds no cut before max (it does for
   * the shipped table: the fingerprint of a zero run settles on a constant that no mask
   * matches). Then a chunk whose first `max` bytes are zero can be cut at max without
   * scanning, which is what keeps the gigabytes of zeros in raw disk images cheap.
   */
  private readonly zeroRunsCutAtMax: boolean;
  private readonly zeros: Uint8Array;

  constructor(params: ChunkerParams = DEFAULT_CHUNKER_PARAMS) {
    validateChunkerParams(params);
    this.params = { ...params };
    this.wasm = instantiate();
    this.mem = new Uint8Array(this.wasm.memory.buffer);
    this.cap = this.mem.length - TABLE_BYTES;
    if (this.cap < 2 * params.max) throw new RangeError("chunker buffer too small for max chunk size");
    ({ maskS: this.maskS, maskL: this.maskL } = masksFor(params));
    this.zeros = new Uint8Array(params.max);
    this.zeroRunsCutAtMax = firstCutJs(this.zeros, 0, params.max, params) === params.max;
  }

  /** The largest piece whose chunks all stay valid until the next push or finish. */
  get stablePiece(): number {
    return this.cap - this.params.max;
  }

  /** Feeds the next piece of the stream; calls `sink` for every chunk it completes. */
  push(piece: Uint8Array, sink: ChunkSink): void {
    // Room made before anything is cut, so that no chunk of this piece moves under its view.
    if (this.end + piece.length > this.cap) this.compact();
    let off = 0;
    while (off < piece.length) {
      if (this.end === this.cap) this.compact();
      const n = Math.min(piece.length - off, this.cap - this.end);
      this.mem.set(piece.subarray(off, off + n), TABLE_BYTES + this.end);
      this.end += n;
      off += n;
      this.cutAvailable(sink);
    }
  }

  /** Ends the stream: emits the remaining bytes as the last chunk and resets for reuse. */
  finish(sink: ChunkSink): void {
    this.cutAvailable(sink);
    if (this.end > this.start) this.emit(this.end - this.start, sink);
    this.start = this.end = 0;
    this.scanned = -1;
  }

  private cutAvailable(sink: ChunkSink): void {
    const { min, avg, max } = this.params;
    for (;;) {
      const s = this.start;
      if (this.scanned < 0) {
        if (this.end - s <= min) return;
        if (this.end - s >= max && this.zeroRunsCutAtMax && this.isZeroRun(s, max)) {
          this.emit(max, sink);
          continue;
        }
        this.scanned = s + min;
        this.wasm.resetFp();
      }
      const normalEnd = Math.min(s + avg, this.end);
      if (this.scanned < normalEnd) {
        const hit = this.scanTo(normalEnd, this.maskS);
        if (hit) {
          this.emit(hit - s, sink);
          continue;
        }
      }
      if (this.scanned >= s + avg) {
        const maxEnd = Math.min(s + max, this.end);
        if (this.scanned < maxEnd) {
          const hit = this.scanTo(maxEnd, this.maskL);
          if (hit) {
            this.emit(hit - s, sink);
            continue;
          }
        }
      }
      if (this.end - s >= max) {
        this.emit(max, sink);
        continue;
      }
      return;
    }
  }

  private isZeroRun(from: number, len: number): boolean {
    const at = TABLE_BYTES + from;
    return Buffer.compare(this.mem.subarray(at, at + len), this.zeros) === 0;
  }

  /** Scans [scanned, to) with `mask`; returns the buffer offset just past a cut, or 0. */
  private scanTo(to: number, mask: number): number {
    const r = this.wasm.scan(TABLE_BYTES + this.scanned, TABLE_BYTES + to, mask);
    if (r === 0) {
      this.scanned = to;
      return 0;
    }
    return r - TABLE_BYTES;
  }

  private emit(len: number, sink: ChunkSink): void {
    const at = TABLE_BYTES + this.start;
    this.start += len;
    this.scanned = -1;
    sink(this.mem.subarray(at, at + len));
  }

  /** Moves the unfinished chunk to the front of the buffer to make room. */
  private compact(): void {
    const shift = this.start;
    this.mem.copyWithin(TABLE_BYTES, TABLE_BYTES + this.start, TABLE_BYTES + this.end);
    this.start = 0;
    this.end -= shift;
    if (this.scanned >= 0) this.scanned -= shift;
  }
}
