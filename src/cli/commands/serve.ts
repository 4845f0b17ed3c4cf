/**
 * `tessera serve`: the API server in the foreground, until SIGTERM or SIGINT. With workers > 1
 * this process is the primary of a cluster (api/cluster-primary.ts) and re-runs as each of its
 * workers (api/cluster-worker.ts), which the environment tells apart.
 */

import type { Logger } from "pino";
import { startPrimary } from "../../api/cluster-primary.js";
import { runWorker, takeWorkerSpec } from "../../api/cluster-worker.js";
import { startServer } from "../../api/server.js";
import { type Command, configOf } from "../command.js";
import { systemdNotifier } from "../sd-notify.js";

export const serve: Command = {
  name: "serve",
  usage: `  tessera serve [--host H] [--port P] [--data DIR] [--config FILE] [--workers N]
                                              serve the Glance Images API v2 (default 127.0.0.1:9292,
                                              ./data, one worker per CPU); docs/configuration.md
                                              lists every setting`,
  async run({ values }) {
    const spec = takeWorkerSpec();
    if (spec) return runWorker(spec);
    const cfg = configOf(values);
    const systemd = systemdNotifier();
    // Listening for signals before the start: one that comes as the server says it listens (a
    // supervisor that waits for that line) would otherwise find no handler and kill it outright.
    let server: { logger: Logger; close(): Promise<void>; kill?(): void } | undefined;
    let pending: string | undefined;
    let signals = 0;
    const stop = (signal: string) => {
      // A second signal means "now": skip the grace period.
      if (++signals > 1) {
        server?.kill?.();
        process.exit(1);
      }
      if (!server) {
        pending = signal;
        return;
      }
      const running = server;
      running.logger.info({ signal }, "signal received");
      void systemd.notify(running.logger, "STOPPING=1");
      running.close().then(
        () => process.exit(0),
        (err) => {
          running.logger.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    const started = cfg.workers > 1 ? await startPrimary(cfg) : await startServer(cfg);
    server = started;
    // Ready is when the node listens: startPrimary resolves once every worker does.
    if (!pending) void systemd.notify(started.logger, "READY=1", `STATUS=listening on ${started.url}`);
    if (pending) {
      signals = 0;
      stop(pending);
    }
  },
};
