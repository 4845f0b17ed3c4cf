import { getHashes } from "node:crypto";
import { Worker } from "node:worker_threads";
import { HASH_WORKER_SOURCE } from "./hash-worker-source.js";

const SLOT_BYTES = 4 * 1024 * 1024;
// 32 MiB of ring: measured, a deeper ring lets the main thread run ahead through the stalls
// of sharing two cores with two hash workers (ingest of new data, 1 GiB: 8 MiB of ring
// ~415 MB/s, 32 MiB ~440, 64 MiB ~460 but over the 300 MB peak-RSS budget of a 4 GiB
// ingest+read). 4 MiB slots rather than 1 MiB: a quarter of the messages, no slower.
const SLOTS = 8;

/** Digests of a whole stream, hex encoded, keyed by algorithm name (e.g. md5, sha512). */
export type Digests = Record<string, string>;

/** Throws unless node:crypto implements `algo`. */
export function assertHashAlgorithm(algo: string): void {
  if (!getHashes().includes(algo)) throw new RangeError(`unsupported hash algorithm: ${algo}`);
}

/**
 * Computes several whole-stream digests (Glance's md5 `checksum` and `os_hash_value`) off the
 * main thread: one worker per algorithm, all reading the same bytes from a shared ring of
 * 4 MiB slots. The main thread only copies each piece in once; the digests, the most
 * expensive work per byte of an ingest, run on the other cores while it chunks and writes.
 *
 * One hasher serves one stream at a time; `HasherPool` keeps them for reuse.
 */
export class WholeImageHasher {
  private readonly ring = new SharedArrayBuffer(SLOT_BYTES * SLOTS);
  private readonly bytes = new Uint8Array(this.ring);
  private readonly workers: Worker[];
  private readonly completed: number[];
  private waiters: (() => void)[] = [];
  private digestWaiters: ((hex: string) => void)[][];
  private failure: Error | undefined;
  private posted = 0;
  private fill = 0;

  constructor(readonly algorithms: readonly string[]) {
    for (const a of algorithms) assertHashAlgorithm(a);
    this.completed = algorithms.map(() => 0);
    this.digestWaiters = algorithms.map(() => []);
    this.workers = algorithms.map((_, i) => {
      const w = new Worker(HASH_WORKER_SOURCE, { eval: true, workerData: { ring: this.ring } });
      w.unref();
      w.on("message", (m: { t: string; hex?: string }) => {
        if (m.t === "done") {
          this.completed[i]++;
          this.wake();
        } else if (m.t === "digest") {
          this.digestWaiters[i].shift()?.(m.hex as string);
        }
      });
      w.on("error", (e) => this.fail(e));
      return w;
    });
  }

  /** Starts a new stream. */
  begin(): void {
    this.workers.forEach((w, i) => {
      w.postMessage({ t: "begin", algo: this.algorithms[i] });
    });
  }

  /** Adds bytes; waits only when every slot of the ring is still being hashed. */
  async update(piece: Uint8Array): Promise<void> {
    let off = 0;
    while (off < piece.length) {
      if (this.fill === 0) await this.slotFree();
      const base = (this.posted % SLOTS) * SLOT_BYTES;
      const n = Math.min(SLOT_BYTES - this.fill, piece.length - off);
      this.bytes.set(piece.subarray(off, off + n), base + this.fill);
      this.fill += n;
      off += n;
      if (this.fill === SLOT_BYTES) this.post();
    }
  }

  /** Ends the stream and returns its digests; the hasher is then ready for another. */
  async digest(): Promise<Digests> {
    if (this.fill > 0) this.post();
    const hexes = await Promise.all(
      this.workers.map(
        (w, i) =>
          new Promise<string>((resolve, reject) => {
            if (this.failure) return reject(this.failure);
            this.digestWaiters[i].push(resolve);
            w.postMessage({ t: "end" });
          }),
      ),
    );
    return Object.fromEntries(this.algorithms.map((a, i) => [a, hexes[i]]));
  }

  /** Stops the workers. A hasher abandoned mid-stream must be destroyed, not reused. */
  async destroy(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private post(): void {
    const off = (this.posted % SLOTS) * SLOT_BYTES;
    for (const w of this.workers) w.postMessage({ t: "data", off, len: this.fill });
    this.posted++;
    this.fill = 0;
  }

  private slotFree(): Promise<void> {
    // Slot k is reused by block posted+SLOTS; it is free once every worker has finished it.
    const ready = () => Math.min(...this.completed) > this.posted - SLOTS;
    if (this.failure) return Promise.reject(this.failure);
    if (ready()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.failure) reject(this.failure);
        else if (ready()) resolve();
        else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private fail(e: Error): void {
    this.failure = e;
    this.wake();
  }
}

/** Reuses hashers between streams, since starting a worker costs tens of milliseconds. */
export class HasherPool {
  private idle: WholeImageHasher[] = [];

  constructor(private readonly algorithms: readonly string[]) {
    for (const a of algorithms) assertHashAlgorithm(a);
  }

  acquire(): WholeImageHasher {
    const h = this.idle.pop() ?? new WholeImageHasher(this.algorithms);
    h.begin();
    return h;
  }

  /** Returns a hasher whose stream ended with digest(); an abandoned one is destroyed. */
  release(h: WholeImageHasher, finished: boolean): void {
    if (finished && this.idle.length < 4) this.idle.push(h);
    else void h.destroy();
  }

  async close(): Promise<void> {
    const all = this.idle;
    this.idle = [];
    await Promise.all(all.map((h) => h.destroy()));
  }
}
