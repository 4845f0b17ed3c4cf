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
import { CorruptDataError } from "../errors.js";
import { CHUNK_ID_BYTES, chunkId, chunkIdImplementation } from "./chunk-id.js";
import { WorkerPool } from "./worker-pool.js";

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

/** Verifies here, answering as the workers do: the bytes, or a rejection on a mismatch. */
function verifyHere(data: Buffer, spans: readonly ChunkSpan[]): Promise<Buffer> {
  for (const s of spans) {
    if (!chunkId(data.subarray(s.offset, s.offset + s.length)).equals(s.id))
      return Promise.reject(corrupt(s));
  }
  return Promise.resolve(data);
}

function corrupt(s: ChunkSpan): CorruptDataError {
  return new CorruptDataError(`chunk ${s.id.toString("hex")} does not match its id`);
}

interface Reply {
  seq: number;
  buf: ArrayBuffer;
  at: number;
  len: number;
  bad: number;
}

export class ChunkVerifier {
  /** None without the native BLAKE3, which the workers load: every chunk is verified here then. */
  private readonly pool?: WorkerPool<Reply, readonly ChunkSpan[], Buffer>;

  /** `threads` workers share the verification, round-robin. */
  constructor(threads = 2) {
    if (chunkIdImplementation !== "native") return;
    this.pool = new WorkerPool({
      threads,
      source: WORKER_SOURCE,
      workerData: () => ({ native: createRequire(import.meta.url).resolve("@napi-rs/blake-hash") }),
      settle: (m, spans): Buffer => {
        if (m.bad >= 0) throw corrupt(spans[m.bad]);
        return Buffer.from(m.buf, m.at, m.len);
      },
    });
  }

  /**
   * Resolves with the bytes of `data` once every span matches. The ArrayBuffer under a large
   * `data` is handed to a worker and detached meanwhile (every view of it, not just `data`):
   * use only the Buffer this resolves with, a view of the same ArrayBuffer when it returns.
   */
  verify(data: Buffer, spans: readonly ChunkSpan[]): Promise<Buffer> {
    // Below INLINE_BYTES the round trip to a worker costs more than hashing here.
    if (!this.pool || !(data.buffer instanceof ArrayBuffer) || data.length < INLINE_BYTES) {
      return verifyHere(data, spans);
    }
    const flat = new Float64Array(spans.length * 2);
    const ids = Buffer.allocUnsafe(spans.length * CHUNK_ID_BYTES);
    spans.forEach((s, i) => {
      flat[2 * i] = s.offset;
      flat[2 * i + 1] = s.length;
      s.id.copy(ids, i * CHUNK_ID_BYTES);
    });
    const msg = { buf: data.buffer, at: data.byteOffset, len: data.length, spans: flat, ids };
    try {
      return this.pool.call(msg, [data.buffer], spans);
    } catch {
      // Not detachable (WebAssembly memory): verify here instead.
      return verifyHere(data, spans);
    }
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }
}
