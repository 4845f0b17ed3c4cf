/**
 * A few worker threads running one source, for work that must leave the main thread (chunk
 * verification on reads, zstd on ingest and reads). Requests go round-robin, each answered by
 * one message with its `seq`. Workers start on first use; one that dies fails only its own
 * requests, and its place gets a new worker on the next request. A worker holds the event loop
 * open exactly while it has requests outstanding, so an idle pool never keeps a process alive.
 *
 * On the read and ingest paths: a request costs its message, one promise and one entry here,
 * nothing more (no copy of the message, no closure per request).
 */
import { type Transferable, Worker } from "node:worker_threads";

interface Lane {
  worker: Worker;
  /** Requests outstanding. */
  busy: number;
}

interface Pending<Ctx, Out> {
  ctx: Ctx;
  resolve: (out: Out) => void;
  reject: (e: Error) => void;
  lane: Lane;
}

export interface WorkerPoolOptions<Reply, Ctx, Out> {
  threads: number;
  /** The worker's code, run with `eval` so that sources under test and the build run the same. */
  source: string;
  /** Its workerData, asked for when a worker starts. */
  workerData: () => unknown;
  /** A request's result from its reply and the context it was posted with; a throw rejects it. */
  settle: (reply: Reply, ctx: Ctx) => Out;
}

export class WorkerPool<Reply extends { seq: number }, Ctx, Out> {
  private lanes: (Lane | undefined)[] = [];
  private seq = 0;
  private readonly pending = new Map<number, Pending<Ctx, Out>>();

  constructor(private readonly o: WorkerPoolOptions<Reply, Ctx, Out>) {}

  /**
   * Posts `msg` to the next worker, its `seq` set here, moving `transfer` over. A message that
   * cannot be posted (memory that cannot be detached) throws here with nothing left pending, so
   * that the caller can do the work itself.
   */
  call(msg: Record<string, unknown>, transfer: readonly Transferable[], ctx: Ctx): Promise<Out> {
    const seq = this.seq++;
    const lane = this.lane(seq % this.o.threads);
    msg.seq = seq;
    lane.worker.postMessage(msg, transfer);
    if (++lane.busy === 1) lane.worker.ref();
    // The reply cannot come before this runs: it arrives as a later event.
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { ctx, resolve, reject, lane });
    });
  }

  async close(): Promise<void> {
    const all = this.lanes;
    this.lanes = [];
    await Promise.all(all.map((l) => l?.worker.terminate()));
  }

  private lane(slot: number): Lane {
    const existing = this.lanes[slot];
    if (existing) return existing;
    const worker = new Worker(this.o.source, { eval: true, workerData: this.o.workerData() });
    worker.unref();
    const lane: Lane = { worker, busy: 0 };
    worker.on("message", (m: Reply) => {
      const p = this.pending.get(m.seq);
      if (!p) return;
      this.pending.delete(m.seq);
      if (--lane.busy === 0) worker.unref();
      let out: Out;
      try {
        out = this.o.settle(m, p.ctx);
      } catch (e) {
        p.reject(e as Error);
        return;
      }
      p.resolve(out);
    });
    worker.on("error", (e) => {
      for (const [seq, p] of this.pending) {
        if (p.lane !== lane) continue;
        this.pending.delete(seq);
        p.reject(e);
      }
      if (this.lanes[slot] === lane) this.lanes[slot] = undefined;
    });
    this.lanes[slot] = lane;
    return lane;
  }
}
