/**
 * `tessera serve` with workers > 1: this process, the primary, does what must happen once per
 * node, and forks the workers (cluster-worker.ts) that serve the API on the one port.
 *
 * Once per node, here, before any worker serves: the data directory's lock; the recovery at
 * start (an upload a crash cut off goes back to queued, an interrupted import fails); the local
 * admin token and the files `tessera gc` finds the server by. Here for as long as it runs: the
 * garbage-collection and scrub schedules, and the collections any worker is asked for; the
 * store figures of the metrics, and GET /metrics for the node (a worker asks, this process
 * sums the workers' registries with its own). A worker gets the configuration and the token
 * in its environment.
 *
 * Shutdown: each worker shuts down gracefully (its own shutdown, within shutdownGraceSeconds),
 * then this process stops its schedules, releases the lock and is done. A worker that dies
 * otherwise is replaced (cluster-workers.ts); one that cannot start while the node starts
 * fails the start with its error.
 */
import cluster from "node:cluster";
import { mkdir } from "node:fs/promises";
import type { Logger } from "pino";
import { AggregatorRegistry } from "prom-client";
import { compose, type ServerParts } from "../compose.js";
import type { ServerConfig } from "../config/server-config.js";
import { lockDir } from "../engine/dir-lock.js";
import type { GcOptions } from "../engine/gc.js";
import { WORKER_ENV, type WorkerSpec } from "./cluster-worker.js";
import { Workers } from "./cluster-workers.js";
import { stdoutDestination } from "./log-destination.js";
import { noteLocalToken, noteUrl, removeNotes } from "./server-files.js";
import { serverLogger } from "./server-logger.js";

/**
 * How connections reach the workers. SCHED_NONE: every worker accepts on the one shared socket.
 * Measured, 2 workers on 2 CPUs, 4 curl clients downloading a 256 MiB image at once, 5 rounds
 * each: 1460 MiB/s in all on average (1332-1527) against 1382 (1276-1478) with Node's default
 * round robin (SCHED_RR: the primary accepts and passes each connection on over IPC), the same
 * within the spread, even in a round where the kernel gave one worker 4 of 5 connections. What
 * decides is that round robin loses connections: one handed to a worker that has just died
 * hangs until the client gives up (test/api/workers.test.ts, "a worker killed with SIGKILL",
 * failed in each of 3 runs with it), while a dead worker of a shared socket takes with it only
 * what it had accepted. Node's own NODE_CLUSTER_SCHED_POLICY, when set, still decides.
 */
const SCHEDULING_POLICY = cluster.SCHED_NONE;

export interface Primary {
  url: string;
  logger: Logger;
  /** Graceful shutdown of the node. Safe to call more than once. */
  close(): Promise<void>;
  /** Kills every worker at once (a second signal). */
  kill(): void;
}

/**
 * Starts the node on `o.dataDir`: takes the lock, recovers, forks `o.workers` workers and
 * resolves once every one serves. Throws DirInUseError while another server holds the
 * directory, and the error of a worker that cannot start, leaving the directory unlocked.
 */
export async function startPrimary(o: ServerConfig): Promise<Primary> {
  const dest = o.logLevel === "silent" ? undefined : stdoutDestination();
  const log = serverLogger(o.logLevel, { svc: "tessera" }, dest);
  const flush = () => dest?.flush(2000) ?? Promise.resolve();
  await mkdir(o.dataDir, { recursive: true });
  const unlock = await lockDir(o.dataDir);
  let service: ServerParts | undefined;
  // The last steps of a shutdown (`stopped`), or of a start that failed after taking the lock.
  const finish = async (stopped: boolean) => {
    await service?.close();
    await removeNotes(o.dataDir);
    if (stopped) log.info("stopped");
    await unlock();
    await flush();
  };
  try {
    // The recovery at start, the schedules and the store figures: this process's share.
    const parts = await compose(o, "server", { log });
    service = parts;
    const localToken = await noteLocalToken(log, o.dataDir);
    const nodeMetrics = async () => {
      const all = (await pool.askAll("metrics", 5_000)) as object[];
      all.push(await parts.metrics.registry.getMetricsAsJSON());
      return AggregatorRegistry.aggregate(all).metrics();
    };
    const pool = new Workers({
      count: o.workers,
      env: (id) => ({
        [WORKER_ENV]: JSON.stringify({
          id,
          localToken,
          config: o,
          primaryPid: process.pid,
        } satisfies WorkerSpec),
      }),
      handlers: {
        gc: (arg) => parts.gc.run(arg as GcOptions),
        metrics: nodeMetrics,
      },
      log,
    });
    if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = SCHEDULING_POLICY;
    const url = await pool.start();
    // Said once the files are there: whoever waits for this line may run `tessera gc` at once.
    await noteUrl(log, o.dataDir, url);
    log.info({ url, dataDir: o.dataDir, workers: o.workers }, "tessera listening");
    return { url, logger: log, ...lifecycle(o, pool, log, finish) };
  } catch (e) {
    await finish(false);
    throw e;
  }
}

function lifecycle(
  o: ServerConfig,
  pool: Workers,
  log: Logger,
  finish: (stopped: boolean) => Promise<void>,
): Pick<Primary, "close" | "kill"> {
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      // One line for the node: what its workers had in flight when the signal came.
      const counts = (await pool.askAll("inflight", 1_000)) as { uploads: number; downloads: number }[];
      const uploads = counts.reduce((n, c) => n + c.uploads, 0);
      const downloads = counts.reduce((n, c) => n + c.downloads, 0);
      log.info({ uploads, downloads, workers: pool.live }, "shutting down");
      // Each worker's own shutdown takes up to the grace period, then 10 s for its handlers to settle.
      await pool.stop(false, (o.shutdownGraceSeconds + 30) * 1000);
      await finish(true);
    })();
    return closing;
  };
  const kill = () => {
    pool.stop(true, 0).catch(() => {});
  };
  return { close, kill };
}
