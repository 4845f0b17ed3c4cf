/**
 * The HTTP server: opens the engine and image service on a data directory, serves the API
 * on host:port, and shuts down gracefully: stop accepting, abort uploads (their images go
 * back to queued), let downloads finish for up to the grace period, then close the store.
 * As a cluster worker (`WorkerRole`, cluster-worker.ts) it takes no lock and leaves no files:
 * its primary holds the one and wrote the others.
 */

import { mkdir } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { Logger } from "pino";
import type { Authenticator } from "../auth/authenticator.js";
import { compose, type ServerParts } from "../compose.js";
import type { ServerConfig } from "../config/server-config.js";
import { lockDir } from "../engine/dir-lock.js";
import type { ImageService } from "../images/images.js";
import type { Resolver } from "../images/web-source.js";
import type { GcSchedule } from "../schedules/gc.js";
import { createApp, type Inflight } from "./app.js";
import { stdoutDestination } from "./log-destination.js";
import type { Metrics } from "./metrics.js";
import { noteLocalToken, noteUrl, removeNotes } from "./server-files.js";
import { serverLogger } from "./server-logger.js";

/** A server's settings (docs/configuration.md; ServerConfig documents each key). */
export type ServerOptions = ServerConfig & {
  /** Node's crypto name for osHashAlgo; by default its Node spelling (nodeHashName). */
  osHashNodeName?: string;
  /** web-download's DNS step, for an embedder (tests: names resolve without leaving loopback). */
  webDownloadResolver?: Resolver;
};

/** What a cluster worker's primary holds and gives it (cluster-primary.ts). */
export interface WorkerRole {
  /** Its number, 1 to workers, kept by its replacement: the `worker` field of its log lines. */
  id: number;
  /** The node's local admin token, which the primary made and wrote. */
  localToken: string;
  /** Collections, run by the primary (where the schedules are). */
  gc: GcSchedule;
  /** GET /metrics for the node, as the primary aggregates it. */
  exposition: () => Promise<string>;
}

export interface RunningServer {
  url: string;
  port: number;
  logger: Logger;
  /** The image service the API serves, for embedding (and for tests to act beside the API). */
  images: ImageService;
  /** How callers are authenticated. */
  auth: Authenticator;
  metrics: Metrics;
  /** Uploads and downloads in progress. */
  inflight(): { uploads: number; downloads: number };
  /** Graceful shutdown (see the module comment). Safe to call more than once. */
  close(): Promise<void>;
}

/**
 * Starts a server on `o.dataDir` (created if missing), holding the directory's lock until it
 * has closed. Throws DirInUseError while another server holds it, and whatever stops the
 * service from opening or the port from being bound, leaving the directory unlocked.
 */
export async function startServer(
  o: ServerOptions,
  logger?: Logger,
  worker?: WorkerRole,
): Promise<RunningServer> {
  const dest = logger || o.logLevel === "silent" ? undefined : stdoutDestination();
  const flush = () => dest?.flush(2000) ?? Promise.resolve();
  const base = { svc: "tessera", ...(worker ? { worker: worker.id, pid: process.pid } : {}) };
  const log = logger ?? serverLogger(o.logLevel, base, dest);
  await mkdir(o.dataDir, { recursive: true });
  const unlock = worker ? async () => {} : await lockDir(o.dataDir);
  // The last steps of a shutdown, or of a start that failed after taking the lock.
  const finish = async () => {
    await unlock();
    const dropped = dest?.dropped() ?? 0;
    if (dropped > 0) log.warn({ dropped }, "log lines dropped: the log reader was slow");
    await flush();
  };
  let service: ServerParts | undefined;
  try {
    service = await compose(o, "server", {
      log,
      osHashNodeName: o.osHashNodeName,
      worker,
      webDownloadResolver: o.webDownloadResolver,
    });
    return await listen(o, service, log, finish, worker);
  } catch (e) {
    await service?.close();
    await finish();
    throw e;
  }
}

/** Resolves once `done()` holds or `ms` have passed, checking every `step` ms. */
async function waitFor(done: () => boolean, ms: number, step: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, step));
}

async function listen(
  o: ServerOptions,
  service: ServerParts,
  log: Logger,
  finish: () => Promise<void>,
  worker: WorkerRole | undefined,
): Promise<RunningServer> {
  const { images, auth, imports, metrics, gc } = service;
  const localToken = worker?.localToken ?? (await noteLocalToken(log, o.dataDir));
  const inflight: Inflight = { uploads: new Set(), downloads: new Set() };
  const app = createApp(images, {
    limits: {
      defaultLimit: o.limitParamDefault,
      maxLimit: o.apiLimitMax,
      maxProperties: o.imagePropertyQuota,
      maxTags: o.imageTagQuota,
    },
    maxJsonBodyBytes: o.maxJsonBodyBytes,
    maxUploads: o.maxUploads,
    logger: log,
    inflight,
    gc,
    metrics,
    auth,
    localToken,
    imports,
    cache: service.cache,
    origin: { publicEndpoint: o.publicEndpoint, proxyHeadersFrom: o.proxyHeadersFrom },
    metricsScrapers: o.metricsScrapers,
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: o.host, port: o.port }, () =>
      resolve(s as Server),
    ) as Server;
    s.once("error", reject);
    // Which worker answered, for operators and tests (a worker's log lines carry its pid too).
    if (worker) s.prependListener("request", (_req, res) => res.setHeader("x-tessera-worker", process.pid));
  });
  // Image uploads can be slow on slow links; Node's default 5-minute request timeout would cut
  // a large upload off mid-stream. A silent connection is another matter: it holds an upload's
  // buffers and its image for nothing, so it is cut after clientIdleSeconds.
  server.requestTimeout = 0;
  server.setTimeout(o.clientIdleSeconds * 1000);
  const port = (server.address() as AddressInfo).port;
  const url = `http://${o.host.includes(":") ? `[${o.host}]` : o.host}:${port}`;
  log.info({ url, dataDir: o.dataDir }, worker ? "worker listening" : "tessera listening");
  if (!worker) await noteUrl(log, o.dataDir, url);

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      log.info({ uploads: inflight.uploads.size, downloads: inflight.downloads.size }, "shutting down");
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      for (const req of inflight.uploads) req.destroy(new Error("the server is shutting down"));
      await waitFor(() => inflight.downloads.size === 0, o.shutdownGraceSeconds * 1000, 50);
      server.closeAllConnections();
      await closed;
      // Let handlers that were cut off settle their catalog updates before the store closes.
      await waitFor(() => inflight.uploads.size === 0 && inflight.downloads.size === 0, 10_000, 10);
      if (!worker) await removeNotes(o.dataDir);
      await service.close();
      log.info("stopped");
      await finish();
    })();
    return closing;
  };
  const counts = () => ({ uploads: inflight.uploads.size, downloads: inflight.downloads.size });
  return { url, port, logger: log, images, auth, metrics, inflight: counts, close };
}
