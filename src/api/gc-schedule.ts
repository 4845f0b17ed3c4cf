/**
 * Garbage collection on a schedule, inside the server: one run every interval (never two at
 * once), and runs on demand between them. Shutdown waits for a run in progress to finish, so
 * the store is never closed under it.
 */
import type { Logger } from "pino";
import type { Engine } from "../engine/engine.js";
import type { GcOptions, GcReport } from "../engine/gc.js";

export interface GcSchedule {
  /** A run now (after any in progress), with these options. */
  run(options: GcOptions): Promise<GcReport>;
  /** No more runs; resolves when the one in progress (if any) is done. */
  stop(): Promise<void>;
}

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
  let current: Promise<unknown> = Promise.resolve();
  let stopped = false;
  const run = (options: GcOptions): Promise<GcReport> => {
    if (stopped) return Promise.reject(new Error("the server is shutting down"));
    const next = current
      .catch(() => {})
      .then(() => engine.gc({ onProgress: o.onProgress, ...options }))
      .then((report) => {
        if (!report.dryRun) o.onReport?.(report);
        return report;
      });
    current = next;
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
  const timer = o.intervalSeconds > 0 ? setInterval(scheduled, o.intervalSeconds * 1000) : undefined;
  timer?.unref();
  return {
    run,
    stop: async () => {
      stopped = true;
      if (timer) clearInterval(timer);
      await current.catch(() => {});
    },
  };
}
