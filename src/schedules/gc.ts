/**
 * Garbage collection on a schedule, inside the server: one run every interval, and runs on
 * demand between them (the engine runs them on a store one after another). Shutdown waits for
 * a run in progress to finish, so the store is never closed under it.
 */
import type { Logger } from "pino";
import type { Engine } from "../engine/engine.js";
import type { GcOptions, GcReport } from "../engine/gc.js";
import { every } from "./every.js";

export interface GcSchedule {
  /** A run now (after any in progress), with these options. */
  run(options: GcOptions): Promise<GcReport>;
  /** No more runs; resolves when the one in progress (if any) is done. */
  stop(): Promise<void>;
}

/**
 * Starts collecting every `intervalSeconds` (0: only on demand) with `graceSeconds`; a run's
 * report goes to `onReport` unless it was a dry run. Runs that fail are logged, not thrown.
 */
export function startGcSchedule(
  engine: Engine,
  o: {
    intervalSeconds: number;
    graceSeconds: number;
    onReport?: (r: GcReport) => void;
    onProgress?: GcOptions["onProgress"];
  },
  log: Logger,
): GcSchedule {
  // Runs on one store already queue behind each other in the engine; these are kept only for
  // shutdown to wait on.
  const runs = new Set<Promise<unknown>>();
  let stopped = false;
  const run = (options: GcOptions): Promise<GcReport> => {
    if (stopped) return Promise.reject(new Error("the server is shutting down"));
    const next = engine.gc({ onProgress: o.onProgress, ...options }).then((report) => {
      if (!report.dryRun) o.onReport?.(report);
      return report;
    });
    runs.add(next);
    next.then(
      () => runs.delete(next),
      () => runs.delete(next),
    );
    return next;
  };
  const scheduled = async () => {
    try {
      const report = await run({ graceSeconds: o.graceSeconds });
      log.info({ gc: report }, "garbage collected");
    } catch (err) {
      if (!stopped) log.error({ err }, "garbage collection failed");
    }
  };
  const ticks = every(o.intervalSeconds, scheduled);
  return {
    run,
    stop: async () => {
      stopped = true;
      await ticks.stop();
      await Promise.allSettled(runs);
    },
  };
}
