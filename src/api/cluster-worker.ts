/**
 * A worker of `tessera serve` with workers > 1 (cluster-primary.ts): serves the API on the
 * port the primary shares, without the directory's lock, the recovery at start or the
 * schedules, which the primary holds and runs once for the node. It asks the primary for
 * collections and for the node's metrics, and answers its questions (its own metrics, its
 * transfers in progress).
 *
 * Signals: SIGTERM is a graceful shutdown, a second one "now". SIGINT is ignored: a terminal's
 * Ctrl-C reaches every process of the group, and the primary, which gets it too, sends SIGTERM;
 * acting on both would make the primary's signal the second one and skip the grace period.
 */
import type { ServerConfig } from "../config/server-config.js";
import type { GcOptions, GcReport } from "../engine/gc.js";
import { Channel, isMessage, type Message, wireError } from "./cluster-ipc.js";
import { type RunningServer, startServer } from "./server.js";

/** The environment variable that makes `tessera serve` a worker, and what it holds. */
export const WORKER_ENV = "TESSERA_CLUSTER_WORKER";

export interface WorkerSpec {
  id: number;
  localToken: string;
  /** The primary's configuration, as loaded: a config file edited since does not reach a replacement. */
  config: ServerConfig;
  /** The primary's pid: the worker's parent for as long as the primary lives. */
  primaryPid?: number;
}

/** This process's spec if it is a worker, taken out of the environment (its children need no token). */
export function takeWorkerSpec(): WorkerSpec | undefined {
  const text = process.env[WORKER_ENV];
  if (text === undefined) return undefined;
  delete process.env[WORKER_ENV];
  return JSON.parse(text) as WorkerSpec;
}

function send(m: Message, done: (err: Error | null) => void = () => {}): void {
  if (process.send) process.send(m, undefined, undefined, done);
  else done(new Error("no channel to the primary"));
}

/** Serves until SIGTERM; exits 1 (telling the primary why) if it cannot start. */
export async function runWorker(spec: WorkerSpec): Promise<void> {
  process.on("SIGINT", () => {});
  // A worker must not outlive its primary: node:cluster exits it when the channel closes, but
  // now and then that did not come after a SIGKILL of the primary (seen: workers of
  // test/faults/crash-recovery's servers, reparented to init, still serving hours later).
  // Its parent not being the primary says the primary is gone, whatever happened to the
  // channel; the primary names itself in the spec, since a primary that died while this
  // process was loading has already left it a different parent.
  // A spec without it comes from a primary of an older release (still running after an upgrade on disk).
  const primary = spec.primaryPid ?? process.ppid;
  const alive = () => process.ppid === primary;
  if (!alive()) process.exit(1);
  setInterval(() => {
    if (!alive()) process.exit(1);
  }, 1000).unref();
  // An exit once the primary is gone (node:cluster's own, on the channel's close, or the check
  // above) ends the process at once: Node's exit waits for its thread pool, and a native
  // module's thread blocked in a wait (seen in gdb: lmdb-js's) kept orphaned workers alive,
  // reparented to init, for hours. Nothing is lost: what this worker committed is committed,
  // and its uploads in flight are queued again once their leases lapse, as after any crash.
  process.on("exit", () => {
    if (!process.connected || !alive()) process.kill(process.pid, "SIGKILL");
  });
  let server: RunningServer | undefined;
  const notYet = () => Promise.reject(new Error("this worker is starting"));
  const channel = new Channel(send, {
    metrics: () => server?.metrics.registry.getMetricsAsJSON() ?? notYet(),
    inflight: async () => server?.inflight() ?? notYet(),
  });
  process.on("message", (m) => {
    if (isMessage(m)) channel.receive(m);
  });
  const gc = {
    // Progress callbacks stay here: the primary reports progress in its own metrics.
    run: ({ dryRun, graceSeconds, store }: GcOptions) =>
      channel.ask("gc", { dryRun, graceSeconds, store }) as Promise<GcReport>,
    stop: async () => {},
  };
  const exposition = () => channel.ask("metrics", undefined, 15_000) as Promise<string>;
  try {
    server = await startServer(spec.config, undefined, {
      id: spec.id,
      localToken: spec.localToken,
      gc,
      exposition,
    });
  } catch (e) {
    // The primary reports it, once, as the error of the start.
    send({ tessera: "failed", ...wireError(e) }, () => process.exit(1));
    return;
  }
  const running = server;
  send({ tessera: "ready", url: running.url });
  let signals = 0;
  process.on("SIGTERM", () => {
    if (++signals > 1) process.exit(1);
    running.close().then(
      () => process.exit(0),
      (err) => {
        running.logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  });
}
