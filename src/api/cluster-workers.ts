/**
 * The primary's workers (cluster-primary.ts): forks them on node:cluster, keeps a channel to
 * each (cluster-ipc.ts), and replaces one that dies. A replacement waits a moment first, and
 * twice as long each time the last one died young, up to half a minute, so that a worker that
 * crashes as it starts does not spin.
 */
import cluster, { type Worker } from "node:cluster";
import type { Logger } from "pino";
import { Channel, errorOf, type Handlers, isMessage } from "./cluster-ipc.js";

/** A worker that served at least this long before it died is replaced at once. */
const LIVED_MS = 10_000;
const FIRST_PAUSE_MS = 500;
const LONGEST_PAUSE_MS = 30_000;

export interface WorkersOptions {
  count: number;
  /** The environment of the worker numbered `id` (1 to count). */
  env(id: number): Record<string, string>;
  /** Answers to the workers' questions. */
  handlers: Handlers;
  log: Logger;
}

interface Slot {
  id: number;
  worker?: Worker;
  channel?: Channel;
  servingSince?: number;
  /** Replacements in a row that died young. */
  failures: number;
  restart?: NodeJS.Timeout;
}

export class Workers {
  private readonly slots: Slot[];
  private stopping = false;
  private readonly exited = new Set<() => void>();
  /** Settles the start: the URL once every worker serves, or the first failure. */
  private starting?: { resolve(url: string): void; reject(e: Error): void; waiting: number };

  constructor(private readonly o: WorkersOptions) {
    this.slots = Array.from({ length: o.count }, (_, i) => ({ id: i + 1, failures: 0 }));
  }

  /**
   * Forks every worker; resolves with their URL once all serve. Rejects with the first that
   * could not start (its own error when it said why), once every other has exited.
   */
  start(): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      this.starting = { resolve, reject, waiting: this.slots.length };
      for (const slot of this.slots) this.fork(slot);
    });
  }

  /** Workers up now. */
  get live(): number {
    return this.slots.filter((s) => s.worker).length;
  }

  /** Asks every serving worker `what`; those that fail or do not answer in time are left out. */
  async askAll(what: string, timeoutMs: number): Promise<unknown[]> {
    const asked = this.slots.filter((s) => s.channel && s.servingSince !== undefined);
    const answers = await Promise.allSettled(asked.map((s) => s.channel?.ask(what, undefined, timeoutMs)));
    return answers.flatMap((a) => (a.status === "fulfilled" ? [a.value] : []));
  }

  /**
   * Stops replacing workers and sends each SIGTERM (its graceful shutdown), or SIGKILL when
   * `now`; resolves once all have exited. One still there after `killAfterMs` is killed.
   */
  async stop(now: boolean, killAfterMs: number): Promise<void> {
    this.stopping = true;
    for (const s of this.slots) clearTimeout(s.restart);
    const gone = new Promise<void>((resolve) => {
      const check = () => {
        if (this.live === 0) {
          this.exited.delete(check);
          resolve();
        }
      };
      this.exited.add(check);
      check();
    });
    for (const s of this.slots) s.worker?.process.kill(now ? "SIGKILL" : "SIGTERM");
    const killer = setTimeout(() => {
      for (const s of this.slots) s.worker?.process.kill("SIGKILL");
    }, killAfterMs);
    await gone;
    clearTimeout(killer);
  }

  private fork(slot: Slot): void {
    const worker = cluster.fork(this.o.env(slot.id));
    slot.worker = worker;
    slot.servingSince = undefined;
    const pid = worker.process.pid;
    this.o.log.info({ worker: slot.id, pid }, "worker started");
    const channel = new Channel((m, done) => {
      if (worker.isConnected()) worker.send(m, undefined, done);
      else done(new Error(`worker ${slot.id} is gone`));
    }, this.o.handlers);
    slot.channel = channel;
    let failure: Error | undefined;
    worker.on("message", (m: unknown) => {
      if (!isMessage(m) || channel.receive(m)) return;
      if (m.tessera === "ready") {
        slot.servingSince = Date.now();
        this.started(undefined, m.url);
      } else if (m.tessera === "failed") {
        failure = errorOf(m);
        this.o.log.error({ worker: slot.id, pid, err: m.message }, "worker could not start");
      }
    });
    // Logged when it exits; the channel closes with it.
    worker.on("error", () => {});
    worker.once("exit", (code, signal) => {
      channel.close(`worker ${slot.id} exited`);
      const lived = slot.servingSince !== undefined ? Date.now() - slot.servingSince : undefined;
      slot.worker = undefined;
      slot.channel = undefined;
      slot.servingSince = undefined;
      const level = this.stopping ? "info" : "error";
      this.o.log[level]({ worker: slot.id, pid, code, signal }, "worker exited");
      if (this.starting) {
        this.started(
          failure ?? new Error(`worker ${slot.id} exited (${signal ?? code}) as the server started`),
        );
      } else if (!this.stopping) {
        this.replace(slot, lived);
      }
      for (const f of [...this.exited]) f();
    });
  }

  /** One worker of the start serves (`url`) or failed (`e`): the first failure fails the start. */
  private started(e: Error | undefined, url?: string): void {
    const s = this.starting;
    if (!s) return;
    if (e) {
      this.starting = undefined;
      this.stop(true, 0).then(() => s.reject(e));
    } else if (--s.waiting === 0) {
      this.starting = undefined;
      s.resolve(url as string);
    }
  }

  private replace(slot: Slot, lived: number | undefined): void {
    slot.failures = lived !== undefined && lived >= LIVED_MS ? 0 : slot.failures + 1;
    const pauseMs =
      slot.failures === 0 ? 0 : Math.min(LONGEST_PAUSE_MS, FIRST_PAUSE_MS * 2 ** (slot.failures - 1));
    this.o.log.warn({ worker: slot.id, pauseMs }, "worker restarting");
    slot.restart = setTimeout(() => {
      slot.restart = undefined;
      if (!this.stopping) this.fork(slot);
    }, pauseMs);
  }
}
