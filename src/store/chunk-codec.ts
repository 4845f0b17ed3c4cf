/**
 * Per-chunk compression off the main thread: zstd on worker threads. On ingest a batch of new
 * chunks is compressed, and a chunk that does not shrink by at least 1/32 is kept raw (random
 * and already-compressed data pass through at memcpy cost, and raw chunks read faster). On
 * read, a run of compressed chunks is decompressed and, when asked, each plain chunk checked
 * against its BLAKE3 id in the same worker pass.
 *
 * zstd comes from @toondepauw/node-zstd (napi-rs, prebuilt for each platform on the npm
 * registry, no build at install); docs/benchmarks.md has the candidates that were measured.
 * Level 3 and the entropy limit: docs/benchmarks.md ("Per-chunk compression") has the runs.
 */
import { createRequire } from "node:module";
import { CorruptDataError } from "../errors.js";
import { WorkerPool } from "../hash/worker-pool.js";
import { CHUNK_FLAG_ZSTD, CHUNK_FLAGS_NONE } from "./pack-format.js";

export const ZSTD_LEVEL = 3;

/** Bits per byte above which a sample looks like random or already-compressed data (random: ~7.9). */
const ENTROPY_LIMIT = 7.5;
const SAMPLE = 512;
const counts = new Uint32Array(256);

/**
 * Whether a chunk is worth sending to the compressor, judged on the order-0 entropy of three
 * 512-byte samples (start, middle, end). Random and already-compressed data (packages, media,
 * encrypted volumes) score near 8 bits per byte and would cost a compression attempt that
 * saves nothing; measured, those attempts took a third of the ingest of new random data.
 */
export function looksCompressible(chunk: Uint8Array): boolean {
  if (chunk.length < 4 * SAMPLE) return true;
  counts.fill(0);
  for (const at of [0, (chunk.length >> 1) - (SAMPLE >> 1), chunk.length - SAMPLE]) {
    for (let i = at; i < at + SAMPLE; i++) counts[chunk[i] as number]++;
  }
  const n = 3 * SAMPLE;
  let bits = 0;
  for (let v = 0; v < 256; v++) {
    const c = counts[v] as number;
    if (c > 0) bits -= (c / n) * Math.log2(c / n);
  }
  return bits < ENTROPY_LIMIT;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { Encoder, Decoder } = require(workerData.zstd);
const { blake3 } = require(workerData.blake3);
const encoder = new Encoder(workerData.level);
const decoder = new Decoder();
parentPort.on("message", (m) => {
  if (m.t === "compress") {
    // m.buf holds the chunks back to back; m.lengths their lengths.
    const src = Buffer.from(m.buf);
    const outs = [];
    const flags = new Uint8Array(m.lengths.length);
    let at = 0;
    for (let i = 0; i < m.lengths.length; i++) {
      const plain = src.subarray(at, at + m.lengths[i]);
      at += m.lengths[i];
      const z = encoder.encodeSync(plain);
      if (z.length <= plain.length - (plain.length >> 5)) { outs.push(z); flags[i] = 1; }
      else outs.push(plain);
    }
    const out = Buffer.concat(outs);
    const sizes = Float64Array.from(outs, (o) => o.length);
    const ab = out.buffer.slice(out.byteOffset, out.byteOffset + out.length);
    parentPort.postMessage({ seq: m.seq, buf: ab, sizes, flags }, [ab]);
  } else if (m.t === "verify") {
    // m.buf: compressed chunks back to back (m.stored lengths), their ids m.ids: decoded and
    // hashed, nothing sent back but the first that does not match (or -1).
    let bad = -1;
    try {
      const src = Buffer.from(m.buf, m.at, m.len);
      let at = 0;
      for (let i = 0; i < m.stored.length; i++) {
        const plain = decoder.decodeSync(src.subarray(at, at + m.stored[i]));
        at += m.stored[i];
        if (Buffer.compare(blake3(plain), m.ids.subarray(32 * i, 32 * i + 32)) !== 0) { bad = i; break; }
      }
    } catch (e) {
      parentPort.postMessage({ seq: m.seq, error: String(e && e.message || e) });
      return;
    }
    parentPort.postMessage({ seq: m.seq, bad });
  } else {
    // m.buf: compressed chunks back to back (m.stored lengths), plain lengths m.plain, ids m.ids.
    try {
      const src = Buffer.from(m.buf, m.at, m.len);
      const total = m.plain.reduce((a, b) => a + b, 0);
      const out = Buffer.allocUnsafeSlow(total);
      let at = 0, to = 0, bad = -1;
      for (let i = 0; i < m.stored.length; i++) {
        const plain = decoder.decodeSync(src.subarray(at, at + m.stored[i]));
        at += m.stored[i];
        if (plain.length !== m.plain[i]) { bad = i; break; }
        if (m.ids && Buffer.compare(blake3(plain), m.ids.subarray(32 * i, 32 * i + 32)) !== 0) { bad = i; break; }
        plain.copy(out, to);
        to += plain.length;
      }
      const ab = out.buffer;
      parentPort.postMessage({ seq: m.seq, buf: ab, at: out.byteOffset, len: out.length, bad }, [ab]);
    } catch (e) {
      parentPort.postMessage({ seq: m.seq, error: String(e && e.message || e) });
    }
  }
});
`;

/**
 * A copy in memory of its own, safe to hand over to a worker: small Buffer.from copies come
 * from Node's shared pool, which must never be transferred.
 */
function ownedCopy(data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafeSlow(data.length);
  out.set(data);
  return out;
}

/** The part of a message to the workers that says where a run of frames is. */
function frames(src: Buffer, spans: readonly { stored: number }[]) {
  return { buf: src.buffer, at: src.byteOffset, len: src.length, stored: spans.map((s) => s.stored) };
}

/** A worker's answer about compressed chunks, as an error if one did not decode to its id. */
function throwIfBad(m: Record<string, unknown>, spans: readonly { id: Buffer }[]): void {
  if (typeof m.error === "string")
    throw new CorruptDataError(`a compressed chunk does not decode: ${m.error}`);
  const bad = m.bad as number;
  if (bad >= 0) throw new CorruptDataError(`chunk ${spans[bad]?.id.toString("hex")} does not match its id`);
}

/** A chunk to store: the plain bytes in, what to write and its flags out. */
export interface Encoded {
  data: Buffer;
  flags: number;
}

/** One compressed chunk within a read: its stored and plain lengths, and its id. */
export interface CompressedSpan {
  stored: number;
  plain: number;
  id: Buffer;
}

type Reply = Record<string, unknown> & { seq: number };

export class ChunkCodec {
  private readonly pool: WorkerPool<Reply, undefined, Reply>;

  constructor(threads = 2) {
    this.pool = new WorkerPool({
      threads,
      source: WORKER_SOURCE,
      workerData: () => {
        const req = createRequire(import.meta.url);
        return {
          zstd: req.resolve("@toondepauw/node-zstd"),
          blake3: req.resolve("@napi-rs/blake-hash"),
          level: ZSTD_LEVEL,
        };
      },
      settle: (m) => m,
    });
  }

  /** Compresses `chunks` (each kept raw if it does not shrink); results in the same order. */
  async compress(chunks: readonly Uint8Array[]): Promise<Encoded[]> {
    if (chunks.length === 0) return [];
    const lengths = chunks.map((c) => c.length);
    const all = Buffer.allocUnsafeSlow(lengths.reduce((a, b) => a + b, 0));
    let at = 0;
    for (const c of chunks) {
      all.set(c, at);
      at += c.length;
    }
    const m = await this.pool.call({ t: "compress", buf: all.buffer, lengths }, [all.buffer], undefined);
    const out = Buffer.from(m.buf as ArrayBuffer);
    const sizes = m.sizes as Float64Array;
    const flags = m.flags as Uint8Array;
    const result: Encoded[] = [];
    let from = 0;
    for (let i = 0; i < sizes.length; i++) {
      const n = sizes[i] as number;
      result.push({
        data: out.subarray(from, from + n),
        flags: flags[i] ? CHUNK_FLAG_ZSTD : CHUNK_FLAGS_NONE,
      });
      from += n;
    }
    return result;
  }

  /**
   * The plain bytes of a run of compressed chunks stored back to back in `data`; with
   * `verify`, each is checked against its id. Rejects with CorruptDataError on any mismatch.
   */
  async decompress(data: Buffer, spans: readonly CompressedSpan[], verify: boolean): Promise<Buffer> {
    // Only a buffer that owns its whole ArrayBuffer is handed over; a view is copied first.
    const whole =
      data.buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.length === data.buffer.byteLength;
    const src = whole ? data : ownedCopy(data);
    const ids = verify ? Buffer.concat(spans.map((s) => s.id)) : undefined;
    const m = await this.pool.call(
      { t: "decompress", ...frames(src, spans), plain: spans.map((s) => s.plain), ids },
      [src.buffer as ArrayBuffer],
      undefined,
    );
    throwIfBad(m, spans);
    return Buffer.from(m.buf as ArrayBuffer, m.at as number, m.len as number);
  }

  /**
   * Checks a run of compressed chunks stored back to back in `data` against their ids, by
   * decoding them on a worker; `data` stays the caller's (a copy crosses over). Rejects with
   * CorruptDataError on the first that does not decode to its id.
   */
  async verifyFrames(data: Buffer, spans: readonly { stored: number; id: Buffer }[]): Promise<void> {
    const src = ownedCopy(data);
    const m = await this.pool.call(
      { t: "verify", ...frames(src, spans), ids: Buffer.concat(spans.map((s) => s.id)) },
      [src.buffer as ArrayBuffer],
      undefined,
    );
    throwIfBad(m, spans);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
