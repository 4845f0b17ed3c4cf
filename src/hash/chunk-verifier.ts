/**
 * Verifies chunks against their BLAKE3 ids on a worker thread, so that a download's
 * verification runs beside the main thread instead of on it. Measured on a warm store here,
 * verification on the main thread held full reads below 2 GB/s, (BLAKE3 3.9 GB/s and the
 * kernel's copy share two cores); see docs/benchmarks.md.
 *
 * Large buffers have their ArrayBuffer transferred to the worker and back (no copy), views
 * into a larger ArrayBuffer included (pooled read buffers); small ones, memory that cannot be
 * detached (WebAssembly), or a process without the native BLAKE3, are verified inline.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { CorruptDataError } from "../errors.js";
import { CHUNK_ID_BYTES, chunkId, chunkIdImplementation } from "./chunk-id.js";

/** A chunk inside a buffer, and the id it must hash to. */
export interface ChunkSpan {
  offset: number;
  length: number;
  id: Buffer;
}

const INLINE_BYTES = 512 * 1024;

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { blake3 } = require(workerData.native);
parentPort.on("message", ({ seq, buf, at, len, spans, ids }) => {
  const data = Buffer.from(buf, at, len);
  let bad = -1;
  for (let i = 0; i < spans.length / 2; i++) {
    const h = blake3(data.subarray(spans[2 * i], spans[2 * i] + spans[2 * i + 1]));
    if (Buffer.compare(h, ids.subarray(32 * i, 32 * i + 32)) !== 0) { bad = i; break; }
  }
  parentPort.postMessage({ seq, buf, at, len, bad }, [buf]);
});
`;

function verifyInline(data: Buffer, spans: readonly ChunkSpan[]): Buffer {
  for (const s of spans) {
    if (!chunkId(data.subarray(s.offset, s.offset + s.length)).equals(s.id)) throw corrupt(s);
  }
  return data;
}

function corrupt(s: ChunkSpan): CorruptDataError {
  return new CorruptDataError(`chunk ${s.id.toString("hex")} does not match its id`);
}

export class ChunkVerifier {
  private workers: (Worker | undefined)[] = [];
  private seq = 0;
  private readonly pending = new Map<
    number,
    { spans: readonly ChunkSpan[]; resolve: (b: Buffer) => void; reject: (e: Error) => void; worker: Worker }
  >();
  /** Outstanding requests per worker, to ref() a worker exactly while it has work. */
  private readonly pendingBy = new Map<Worker, number>();

  /** `threads` workers share the verification, round-robin. */
  constructor(private readonly threads = 2) {}

  /**
   * Resolves with the bytes of `data` once every span matches. The ArrayBuffer under a large
   * `data` is handed to a worker and detached meanwhile (every view of it, not just `data`):
   * use only the Buffer this resolves with, a view of the same ArrayBuffer when it returns.
   */
  verify(data: Buffer, spans: readonly ChunkSpan[]): Promise<Buffer> {
    const transferable = data.buffer instanceof ArrayBuffer;
    // Below INLINE_BYTES the round trip to a worker costs more than hashing here.
    const worker = transferable && data.length >= INLINE_BYTES ? this.getWorker(this.seq) : undefined;
    if (!worker) {
      try {
        return Promise.resolve(verifyInline(data, spans));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const seq = this.seq++;
    const flat = new Float64Array(spans.length * 2);
    const ids = Buffer.allocUnsafe(spans.length * CHUNK_ID_BYTES);
    spans.forEach((s, i) => {
      flat[2 * i] = s.offset;
      flat[2 * i + 1] = s.length;
      s.id.copy(ids, i * CHUNK_ID_BYTES);
    });
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { spans, resolve, reject, worker });
      this.count(worker, +1);
      const msg = { seq, buf: data.buffer, at: data.byteOffset, len: data.length, spans: flat, ids };
      try {
        worker.postMessage(msg, [data.buffer as ArrayBuffer]);
      } catch {
        // Not detachable (WebAssembly memory): verify here instead.
        this.pending.delete(seq);
        this.count(worker, -1);
        try {
          resolve(verifyInline(data, spans));
        } catch (e) {
          reject(e as Error);
        }
      }
    });
  }

  async close(): Promise<void> {
    const all = this.workers;
    this.workers = [];
    await Promise.all(all.map((w) => w?.terminate()));
  }

  /** Keeps the event loop alive exactly while a worker has requests outstanding. */
  private count(w: Worker, delta: number): void {
    const n = (this.pendingBy.get(w) ?? 0) + delta;
    this.pendingBy.set(w, n);
    if (n === 1 && delta > 0) w.ref();
    if (n === 0) w.unref();
  }

  private getWorker(seq: number): Worker | undefined {
    if (chunkIdImplementation !== "native") return undefined;
    const slot = seq % this.threads;
    if (this.workers[slot]) return this.workers[slot];
    const native = createRequire(import.meta.url).resolve("@napi-rs/blake-hash");
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { native } });
    w.unref();
    w.on("message", (m: { seq: number; buf: ArrayBuffer; at: number; len: number; bad: number }) => {
      const p = this.pending.get(m.seq);
      if (!p) return;
      this.pending.delete(m.seq);
      this.count(w, -1);
      if (m.bad >= 0) p.reject(corrupt(p.spans[m.bad]));
      else p.resolve(Buffer.from(m.buf, m.at, m.len));
    });
    w.on("error", (e) => {
      for (const [seq, p] of this.pending) {
        if (p.worker !== w) continue;
        p.reject(e);
        this.pending.delete(seq);
      }
      this.workers[slot] = undefined;
    });
    this.workers[slot] = w;
    return w;
  }
}
