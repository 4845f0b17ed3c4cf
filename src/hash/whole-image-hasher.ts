import { getHashes } from "node:crypto";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { HASH_WORKER_SOURCE } from "./hash-worker-source.js";

const SLOT_BYTES = 4 * 1024 * 1024;
// 8 slots of 4 MiB a stream, as deep as the ring each stream once had to itself: measured, a
// deeper ring lets the main thread run ahead through the stalls of sharing two cores with two
// hash workers (ingest of new data, 1 GiB: 8 MiB of ring ~415 MB/s, 32 MiB ~440, 64 MiB ~460 but
// over the 300 MB peak-RSS budget of a 4 GiB ingest+read). 4 MiB slots rather than 1 MiB: a
// quarter of the messages, no slower.
const SLOTS_PER_STREAM = 8;
const SLOTS_PER_LANE = 8;
/** A partly filled slot of a stream silent this long is hashed as it is, so that it is free. */
const IDLE_FLUSH_MS = 100;

/** Digests of a whole stream, hex encoded, keyed by algorithm name (e.g. md5, sha512). */
export type Digests = Record<string, string>;

/** Throws unless node:crypto implements `algo`. */
export function assertHashAlgorithm(algo: string): void {
  if (!getHashes().includes(algo)) throw new RangeError(`unsupported hash algorithm: ${algo}`);
}

interface Slot {
  i: number;
  bytes: Uint8Array;
  buf: SharedArrayBuffer;
  /** Workers yet to finish the data posted in it; the lane it was posted to. */
  pending: number;
  lane?: Lane;
  owner?: WholeImageHasher;
}

/** One worker per algorithm; every stream of the lane is hashed by these. */
interface Lane {
  workers: Worker[];
  streams: number;
  failure?: Error;
}

/**
 * Computes several whole-stream digests (Glance's md5 `checksum` and `os_hash_value`) off the
 * main thread, for any number of streams at once with a fixed number of threads and a fixed
 * amount of memory: a few lanes of workers (one per algorithm each) and a few 4 MiB shared slots.
 * The main thread copies each piece into a slot once; the digests, the most expensive work per
 * byte of an ingest, run on the other cores while it chunks and writes. Streams beyond what the
 * slots hold wait for a free slot (backpressure), never for a thread or memory of their own:
 * a stream that stalls keeps no slot for longer than IDLE_FLUSH_MS.
 */
export class HasherPool {
  private readonly lanes: Lane[] = [];
  private readonly laneCount: number;
  private readonly slots: Slot[] = [];
  private readonly free: Slot[] = [];
  private readonly maxSlots: number;
  private waiters: { h: WholeImageHasher; resolve: (s: Slot) => void; reject: (e: Error) => void }[] = [];
  private readonly streams = new Map<number, WholeImageHasher>();
  private nextStream = 1;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly algorithms: readonly string[],
    options: { lanes?: number } = {},
  ) {
    for (const a of algorithms) assertHashAlgorithm(a);
    // A lane (one worker per algorithm) for every algorithms + 1 cores, the main thread's
    // included: more would only contend for the same cores.
    this.laneCount =
      options.lanes ?? Math.max(1, Math.min(8, Math.floor(availableParallelism() / (algorithms.length + 1))));
    this.maxSlots = SLOTS_PER_LANE * this.laneCount;
  }

  /** Threads the pool runs now (at most lanes × algorithms). */
  get threads(): number {
    return this.lanes.reduce((n, l) => n + l.workers.length, 0);
  }

  /** Starts a stream on the least busy lane. */
  acquire(): WholeImageHasher {
    let lane = this.lanes.reduce<Lane | undefined>(
      (a, l) => (!a || l.streams < a.streams ? l : a),
      undefined,
    );
    if (!lane || (lane.streams > 0 && this.lanes.length < this.laneCount)) lane = this.newLane();
    lane.streams++;
    const s = this.nextStream++;
    const h = new WholeImageHasher(this, lane, s);
    this.streams.set(s, h);
    lane.workers.forEach((w, k) => {
      w.postMessage({ t: "begin", s, algo: this.algorithms[k] });
    });
    this.timer ??= setInterval(() => this.flushIdle(), IDLE_FLUSH_MS).unref();
    return h;
  }

  /** Ends a stream: one that did not finish with digest() is dropped by its workers. */
  release(h: WholeImageHasher, finished: boolean): void {
    h.released = true;
    if (!this.streams.delete(h.id)) return;
    h.lane.streams--;
    if (!finished) {
      for (const w of h.lane.workers) w.postMessage({ t: "drop", s: h.id });
      const fill = h.takeFill();
      if (fill) this.giveSlot(fill);
      this.rejectWaiters((w) => w === h, new Error("the stream was abandoned"));
    }
    if (this.streams.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const all = this.lanes.splice(0);
    await Promise.all(all.flatMap((l) => l.workers.map((w) => w.terminate())));
  }

  /** A free slot for `h`, once one is free and `h` has fewer than its share in flight. */
  takeSlot(h: WholeImageHasher): Promise<Slot> {
    if (h.lane.failure) return Promise.reject(h.lane.failure);
    return new Promise((resolve, reject) => {
      this.waiters.push({ h, resolve, reject });
      this.serveWaiters();
    });
  }

  /** Sends the filled part of `slot` to `h`'s workers (or takes it back, if they are gone). */
  post(h: WholeImageHasher, slot: Slot, len: number): void {
    if (h.lane.failure || h.released) {
      this.giveSlot(slot);
      return;
    }
    slot.pending = h.lane.workers.length;
    slot.lane = h.lane;
    slot.owner = h;
    h.inFlight++;
    for (const w of h.lane.workers) w.postMessage({ t: "data", s: h.id, i: slot.i, len });
  }

  private tryTake(h: WholeImageHasher): Slot | undefined {
    if (h.inFlight >= SLOTS_PER_STREAM) return undefined;
    let slot = this.free.pop();
    if (!slot && this.slots.length < this.maxSlots) {
      const buf = new SharedArrayBuffer(SLOT_BYTES);
      slot = { i: this.slots.length, buf, bytes: new Uint8Array(buf), pending: 0 };
      this.slots.push(slot);
      for (const l of this.lanes) for (const w of l.workers) w.postMessage({ t: "slot", i: slot.i, buf });
    }
    return slot;
  }

  giveSlot(slot: Slot): void {
    slot.lane = undefined;
    slot.owner = undefined;
    this.free.push(slot);
    this.serveWaiters();
  }

  private serveWaiters(): void {
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      const slot = this.tryTake(w.h);
      if (slot) w.resolve(slot);
      else still.push(w);
    }
    this.waiters = still;
  }

  /** Fails the waits for a slot of the streams `whose` picks. */
  private rejectWaiters(whose: (h: WholeImageHasher) => boolean, e: Error): void {
    this.waiters = this.waiters.filter((w) => {
      if (!whose(w.h)) return true;
      w.reject(e);
      return false;
    });
  }

  private flushIdle(): void {
    const before = performance.now() - IDLE_FLUSH_MS;
    for (const h of this.streams.values()) h.flushIfIdleSince(before);
  }

  private newLane(): Lane {
    const lane: Lane = { workers: [], streams: 0 };
    lane.workers = this.algorithms.map(() => {
      const w = new Worker(HASH_WORKER_SOURCE, { eval: true });
      w.unref();
      for (const slot of this.slots) w.postMessage({ t: "slot", i: slot.i, buf: slot.buf });
      w.on("message", (m: { t: string; i?: number; s?: number; hex?: string }) => {
        // A failed lane's slots went back already; what its other workers still say is stale.
        if (lane.failure) return;
        if (m.t === "done") {
          const slot = this.slots[m.i as number];
          if (!slot) return;
          if (--slot.pending === 0) {
            if (slot.owner) slot.owner.inFlight--;
            this.giveSlot(slot);
          }
        } else if (m.t === "digest") {
          this.streams.get(m.s as number)?.digestFrom(w, m.hex as string);
        }
      });
      w.on("error", (e) => this.failLane(lane, e));
      return w;
    });
    this.lanes.push(lane);
    return lane;
  }

  /** A worker died: its lane's streams fail, its slots come back, new streams get a new lane. */
  private failLane(lane: Lane, e: Error): void {
    if (lane.failure) return;
    lane.failure = e;
    const at = this.lanes.indexOf(lane);
    if (at >= 0) this.lanes.splice(at, 1);
    for (const w of lane.workers) void w.terminate();
    for (const h of this.streams.values()) {
      if (h.lane !== lane) continue;
      h.fail(e);
      const fill = h.takeFill();
      if (fill) this.giveSlot(fill);
    }
    this.rejectWaiters((w) => w.lane === lane, e);
    for (const slot of this.slots) {
      if (slot.lane !== lane) continue;
      slot.pending = 0;
      if (slot.owner) slot.owner.inFlight--;
      this.giveSlot(slot);
    }
  }
}

/** One stream's digests, computed by its lane of the pool. */
export class WholeImageHasher {
  private fill: Slot | undefined;
  private used = 0;
  private lastUpdate = performance.now();
  private failure: Error | undefined;
  private digestWaiters = new Map<Worker, (hex: string) => void>();
  /** Slots posted and not yet hashed by every worker. */
  inFlight = 0;
  /** Given back to the pool: any slot it still gets goes straight back. */
  released = false;

  constructor(
    private readonly pool: HasherPool,
    readonly lane: Lane,
    readonly id: number,
  ) {}

  /** Adds bytes; waits only when the stream has its share of slots in flight, or none is free. */
  async update(piece: Uint8Array): Promise<void> {
    let off = 0;
    while (off < piece.length) {
      if (this.failure) throw this.failure;
      if (!this.fill) {
        const slot = await this.pool.takeSlot(this);
        if (this.released || this.failure) {
          this.pool.giveSlot(slot);
          throw this.failure ?? new Error("the stream was abandoned");
        }
        this.fill = slot;
        this.used = 0;
      }
      const n = Math.min(SLOT_BYTES - this.used, piece.length - off);
      this.fill.bytes.set(piece.subarray(off, off + n), this.used);
      this.used += n;
      off += n;
      if (this.used === SLOT_BYTES) this.postFill();
    }
    this.lastUpdate = performance.now();
  }

  /** Ends the stream and returns its digests. */
  async digest(): Promise<Digests> {
    if (this.failure) throw this.failure;
    this.postFill();
    const workers = this.lane.workers;
    const hexes = await Promise.all(
      workers.map(
        (w) =>
          new Promise<string>((resolve) => {
            this.digestWaiters.set(w, resolve);
            w.postMessage({ t: "end", s: this.id });
          }),
      ),
    );
    if (this.failure) throw this.failure;
    return Object.fromEntries(this.pool.algorithms.map((a, i) => [a, hexes[i] as string]));
  }

  /** The partly filled slot, given up (an abandoned stream). */
  takeFill(): Slot | undefined {
    const f = this.fill;
    this.fill = undefined;
    return f;
  }

  flushIfIdleSince(t: number): void {
    if (this.fill && this.lastUpdate < t) this.postFill();
  }

  digestFrom(w: Worker, hex: string): void {
    this.digestWaiters.get(w)?.(hex);
  }

  fail(e: Error): void {
    this.failure = e;
    for (const resolve of this.digestWaiters.values()) resolve("");
  }

  private postFill(): void {
    const slot = this.fill;
    if (!slot) return;
    this.fill = undefined;
    this.pool.post(this, slot, this.used);
    this.used = 0;
  }
}
