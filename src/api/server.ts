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
import { type AuthConfig, openAuthenticator } from "../auth/open-auth.js";
import { chunkerForAverage } from "../chunker/params.js";
import { LOCAL_TOKEN_FILE, lockDir, SERVER_URL_FILE } from "../engine/dir-lock.js";
import { Engine } from "../engine/engine.js";
import type { FormatPolicy } from "../formats/rules.js";
import { ImageService } from "../images/images.js";
import { type ImportMethod, Imports } from "../images/imports.js";
import type { QuotaConfig } from "../images/quotas.js";
import type { ImportFilter } from "../images/web-source.js";
import type { StoreConfig } from "../store/open-store.js";
import { createApp, type Inflight } from "./app.js";
import { startGcSchedule } from "./gc-schedule.js";
import { stdoutDestination } from "./log-destination.js";
import { createMetrics } from "./metrics.js";
import { startScrubSchedule } from "./scrub-schedule.js";

export interface ServerOptions {
  host: string;
  port: number;
  dataDir: string;
  /** fsync packs, manifests and the catalog before acknowledging an upload. */
  fsync: boolean;
  /** Glance's hashing_algorithm: the hashlib name reported as os_hash_algo... */
  osHashAlgo: string;
  /** ...and the Node crypto name that computes it. */
  osHashNodeName: string;
  /** Glance's image_size_cap, bytes. */
  imageSizeCap: number;
  /** Glance's limit_param_default and api_limit_max. */
  limitParamDefault: number;
  apiLimitMax: number;
  /** Glance's image_property_quota and image_tag_quota. */
  imagePropertyQuota: number;
  imageTagQuota: number;
  /** Largest JSON request body (create, patch), bytes. */
  maxJsonBodyBytes: number;
  /** Check every chunk read against its BLAKE3 id (on worker threads) before sending it. */
  verifyOnRead: boolean;
  /** How long a shutdown waits for downloads in progress before cutting them off. */
  shutdownGraceSeconds: number;
  /**
   * A connection silent this long (no byte received or sent) is cut: a stalled upload's image
   * goes back to queued, a download that is not read ends (Glance's client_socket_timeout). 0: never.
   */
  clientIdleSeconds: number;
  /**
   * Uploads and stages in progress at once, and web-download imports at once; past it, 503
   * with Retry-After. 0: no limit.
   */
  maxUploads: number;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** Format inspection of uploads and its safety rules (docs/formats.md). */
  formats: FormatPolicy;
  /** The object stores by name (Glance's enabled_backends), and the one uploads go to. */
  stores: Record<string, StoreConfig>;
  defaultStore: string;
  /**
   * The order downloads try the stores in for each chunk (default: the default store, then
   * the others as configured); stores left out come last.
   */
  storeReadOrder: string[];
  /**
   * Average chunk size of a new data directory (a power of two; min a quarter, max four
   * times). 0: the directory's own, 64 KiB for a new one. A directory keeps the size it was
   * created with: another is refused at start.
   */
  chunkSize: number;
  /** Seconds between background garbage collections (0: none, only on demand). */
  gcIntervalSeconds: number;
  /** Seconds an unreferenced pack or manifest waits before a background run deletes it. */
  gcGraceSeconds: number;
  /** Seconds between background scrubs of every chunk (0: none); and their read rate. */
  scrubIntervalSeconds: number;
  scrubBytesPerSecond: number;
  /** How callers are authenticated (docs/security.md). */
  auth: AuthConfig;
  /** Per-project quotas (Glance's unified limits); undefined: none. */
  quotas: QuotaConfig | undefined;
  /** Glance's image_member_quota (negative: no limit). */
  imageMemberQuota: number;
  /** Uploads write every chunk as if new: their timing reveals nothing of others' data. */
  dedupWriteThrough: boolean;
  /** Glance's enabled_import_methods. */
  importMethods: ImportMethod[];
  /** Glance's import_filtering_opts for web-download. */
  importFilter: ImportFilter;
  /** web-download: longest silence from the source, and most redirects followed. */
  webDownloadIdleTimeoutSeconds: number;
  webDownloadMaxRedirects: number;
  /** Import plugins: image conversion to one output format; properties injected. */
  importPlugins: ImportPlugins;
}

export interface ImportPlugins {
  imageConversion?: { outputFormat: string };
  injectMetadata?: { properties: Record<string, string>; ignoreUserRoles?: string[] };
}

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
  let engine: Engine | undefined;
  try {
    engine = await Engine.openDir(o.dataDir, {
      stores: o.stores,
      defaultStore: o.defaultStore,
      readOrder: o.storeReadOrder.length > 0 ? o.storeReadOrder : undefined,
      durable: o.fsync,
      hashAlgorithms: ["md5", o.osHashNodeName],
      chunker: o.chunkSize === 0 ? undefined : chunkerForAverage(o.chunkSize),
      verifyOnRead: o.verifyOnRead,
    });
    return await listen(o, engine, log, finish);
  } catch (e) {
    await engine?.close();
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
  engine: Engine,
  log: Logger,
  finish: () => Promise<void>,
): Promise<RunningServer> {
  const auth = openAuthenticator(o.auth);
  const images = await ImageService.open(engine, {
    sizeCap: o.imageSizeCap,
    osHashAlgo: o.osHashAlgo,
    formats: o.formats,
    quotas: o.quotas,
    memberQuota: o.imageMemberQuota,
    dedupWriteThrough: o.dedupWriteThrough,
  });
  const imports = await Imports.open(images, {
    methods: o.importMethods,
    filter: o.importFilter,
    webDownload: {
      idleTimeoutMs: o.webDownloadIdleTimeoutSeconds * 1000,
      maxRedirects: o.webDownloadMaxRedirects,
    },
    convertTo: o.importPlugins.imageConversion?.outputFormat,
    injectProperties: o.importPlugins.injectMetadata?.properties,
    injectIgnoreRoles: o.importPlugins.injectMetadata?.ignoreUserRoles ?? ["admin"],
    maxWebDownloads: o.maxUploads,
  });
  // The local admin token: whoever can read the data directory owns its data anyway.
  const localToken = randomBytes(32).toString("base64url");
  await note(log, join(o.dataDir, LOCAL_TOKEN_FILE), `${localToken}\n`, 0o600);
  const inflight: Inflight = { uploads: new Set(), downloads: new Set() };
  const metrics = createMetrics(images);
  const gc = startGcSchedule(
    engine,
    {
      intervalSeconds: o.gcIntervalSeconds,
      graceSeconds: o.gcGraceSeconds,
      onReport: metrics.gc,
      onProgress: metrics.gcProgress,
    },
    log,
  );
  const scrub = startScrubSchedule(
    engine,
    {
      intervalSeconds: o.scrubIntervalSeconds,
      bytesPerSecond: o.scrubBytesPerSecond,
      onReport: metrics.scrub,
      onProgress: metrics.scrubProgress,
    },
    log,
  );
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
      await imports.close();
      await gc.stop();
      await scrub.stop();
      await rm(join(o.dataDir, SERVER_URL_FILE), { force: true });
      await rm(join(o.dataDir, LOCAL_TOKEN_FILE), { force: true });
      auth.close?.();
      await engine.close();
      log.info("stopped");
      await finish();
    })();
    return closing;
  };
  const counts = () => ({ uploads: inflight.uploads.size, downloads: inflight.downloads.size });
  return { url, port, logger: log, images, auth, inflight: counts, close };
}
