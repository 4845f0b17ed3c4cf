/**
 * The HTTP server: opens the engine and image service on a data directory, serves the API
 * on host:port, and shuts down gracefully: stop accepting, abort uploads (their images go
 * back to queued), let downloads finish for up to the grace period, then close the store.
 */

import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import pino, { type Logger } from "pino";
import type { Authenticator } from "../auth/authenticator.js";
import { compose, type ServerParts } from "../compose.js";
import type { ServerConfig } from "../config/server-config.js";
import { LOCAL_TOKEN_FILE, lockDir, SERVER_URL_FILE } from "../engine/dir-lock.js";
import type { ImageService } from "../images/images.js";
import { createApp, type Inflight } from "./app.js";
import { stdoutDestination } from "./log-destination.js";

/** A server's settings (docs/configuration.md; ServerConfig documents each key). */
export type ServerOptions = ServerConfig & {
  /** Node's crypto name for osHashAlgo; by default its Node spelling (nodeHashName). */
  osHashNodeName?: string;
};

export interface RunningServer {
  url: string;
  port: number;
  logger: Logger;
  /** The image service the API serves, for embedding (and for tests to act beside the API). */
  images: ImageService;
  /** How callers are authenticated. */
  auth: Authenticator;
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
export async function startServer(o: ServerOptions, logger?: Logger): Promise<RunningServer> {
  const dest = logger || o.logLevel === "silent" ? undefined : stdoutDestination();
  const flush = () => dest?.flush(2000) ?? Promise.resolve();
  const log =
    logger ?? pino({ level: o.logLevel, base: { svc: "tessera" } }, { write: (l) => dest?.write(l) });
  await mkdir(o.dataDir, { recursive: true });
  const unlock = await lockDir(o.dataDir);
  // The last steps of a shutdown, or of a start that failed after taking the lock.
  const finish = async () => {
    await unlock();
    const dropped = dest?.dropped() ?? 0;
    if (dropped > 0) log.warn({ dropped }, "log lines dropped: the log reader was slow");
    await flush();
  };
  let service: ServerParts | undefined;
  try {
    service = await compose(o, "server", { log, osHashNodeName: o.osHashNodeName });
    return await listen(o, service, log, finish);
  } catch (e) {
    await service?.close();
    await finish();
    throw e;
  }
}

/**
 * Writes one of the small files that let `tessera gc` find and reach this server. A server
 * started on a full disk serves all the same (deleting images is how the disk is freed), so a
 * file that cannot be written is a warning, not a failed start.
 */
async function note(log: Logger, file: string, text: string, mode: number): Promise<void> {
  try {
    await writeFile(file, text, { mode });
  } catch (e) {
    log.warn({ file, err: String(e) }, "could not write a file tessera gc uses to reach this server");
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
): Promise<RunningServer> {
  const { images, auth, imports, metrics, gc } = service;
  // The local admin token: whoever can read the data directory owns its data anyway.
  const localToken = randomBytes(32).toString("base64url");
  await note(log, join(o.dataDir, LOCAL_TOKEN_FILE), `${localToken}\n`, 0o600);
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
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: o.host, port: o.port }, () =>
      resolve(s as Server),
    ) as Server;
    s.once("error", reject);
  });
  // Image uploads can be slow on slow links; Node's default 5-minute request timeout would cut
  // a large upload off mid-stream. A silent connection is another matter: it holds an upload's
  // buffers and its image for nothing, so it is cut after clientIdleSeconds.
  server.requestTimeout = 0;
  server.setTimeout(o.clientIdleSeconds * 1000);
  const port = (server.address() as AddressInfo).port;
  const url = `http://${o.host.includes(":") ? `[${o.host}]` : o.host}:${port}`;
  log.info({ url, dataDir: o.dataDir }, "tessera listening");
  // Where `tessera gc` finds this server to ask it for a collection (loopback when bound to all).
  const local = url.replace("//0.0.0.0:", "//127.0.0.1:").replace("//[::]:", "//[::1]:");
  await note(log, join(o.dataDir, SERVER_URL_FILE), `${local}\n`, 0o644);

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
      await rm(join(o.dataDir, SERVER_URL_FILE), { force: true });
      await rm(join(o.dataDir, LOCAL_TOKEN_FILE), { force: true });
      await service.close();
      log.info("stopped");
      await finish();
    })();
    return closing;
  };
  const counts = () => ({ uploads: inflight.uploads.size, downloads: inflight.downloads.size });
  return { url, port, logger: log, images, auth, inflight: counts, close };
}
