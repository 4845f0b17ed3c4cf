/**
 * The background scrubber: every interval, a read-only `fsck` of every store at a bounded rate,
 * so bit rot is found before a tenant boots from it; findings are logged as errors (repair is
 * `tessera fsck --repair`, with the server stopped). Shutdown cuts a run short.
 */
import type { Logger } from "pino";
import type { Engine } from "../engine/engine.js";
import type { FsckOptions, FsckReport } from "../engine/fsck.js";
import { every } from "./every.js";

/**
 * Starts scrubbing every `intervalSeconds` (0: never) at `bytesPerSecond`; each finished run's
 * report goes to `onReport`. `stop` aborts a run in progress and resolves once it has ended.
 */
export function startScrubSchedule(
  engine: Engine,
  o: {
    intervalSeconds: number;
    bytesPerSecond: number;
    onReport?: (r: FsckReport) => void;
    onProgress?: FsckOptions["onProgress"];
  },
  log: Logger,
): { stop(): Promise<void> } {
  const abort = new AbortController();
  const scrub = async () => {
    try {
      const report = await engine.fsck({
        bytesPerSecond: o.bytesPerSecond,
        signal: abort.signal,
        onProgress: o.onProgress,
      });
      o.onReport?.(report);
      const found = report.stores.some((s) => s.badChunks + s.missingChunks > 0);
      if (found) log.error({ scrub: report }, "scrub found bad or missing chunks: run tessera fsck --repair");
      else log.info({ scrub: report }, "scrub found every chunk sound");
    } catch (err) {
      if (!abort.signal.aborted) log.error({ err }, "scrub failed");
    }
  };
  const ticks = every(o.intervalSeconds, scrub);
  return {
    stop: async () => {
      abort.abort();
      await ticks.stop();
    },
  };
}
