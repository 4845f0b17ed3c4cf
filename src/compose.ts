/**
 * The composition root: the one place a loaded configuration becomes a running service
 * (stores and catalog inside the engine, the image service, imports, authentication, the
 * background schedules), so that every setting reaches `tessera serve` and the offline
 * commands alike. Only src/cli, src/api/server.ts and src/api/cluster-primary.ts import it; it
 * may import anything.
 *
 * It builds only as far as asked, because opening the image service writes (an upload a crash
 * cut off goes back to queued) and opening imports fails interrupted tasks: commands that only
 * read stop at the engine and may run beside a server; the rest take the directory's lock first.
 * A cluster worker (`worker`) builds a server without those writes and without schedules: its
 * primary, which holds the lock, did the one and runs the other, once for the node.
 */
import { hostname } from "node:os";
import { resolve } from "node:path";
import pino, { type Logger } from "pino";
import { registerCacheMetrics } from "./api/cache-metrics.js";
import type { CacheApiParts } from "./api/cache-routes.js";
import { createMetrics, type Metrics } from "./api/metrics.js";
import type { Authenticator } from "./auth/authenticator.js";
import { openAuthenticator } from "./auth/open-auth.js";
import type { ChunkCache } from "./cache/chunk-cache.js";
import { openChunkCache } from "./cache/open-cache.js";
import { startPrefetcher } from "./cache/prefetcher.js";
import { chunkerForAverage } from "./chunker/params.js";
import { nodeHashName } from "./config/hash-names.js";
import type { ServerConfig } from "./config/server-config.js";
import { Engine } from "./engine/engine.js";
import { requeueAbandoned } from "./images/abandoned-uploads.js";
import { ImageService } from "./images/images.js";
import { Imports } from "./images/imports.js";
import type { Resolver } from "./images/web-source.js";
import { every } from "./schedules/every.js";
import { type GcSchedule, startGcSchedule } from "./schedules/gc.js";
import { startScrubSchedule } from "./schedules/scrub.js";

/** How often a node looks for uploads a crash cut off (their leases gone). */
const REQUEUE_SECONDS = 60;

/**
 * How far to build: "engine" (storage only: reads, ingest of bare objects, gc, fsck), "images"
 * (the image service too: offline commands that change images), "server" (everything a
 * server runs: imports, authentication, metrics, schedules).
 */
export type Parts = "engine" | "images" | "server";

export interface EngineParts {
  config: ServerConfig;
  engine: Engine;
  /** Stops and closes what was built, in reverse order, the engine last; later calls wait on the first. */
  close(): Promise<void>;
}

export interface ImageParts extends EngineParts {
  images: ImageService;
}

export interface ServerParts extends ImageParts {
  auth: Authenticator;
  imports: Imports;
  metrics: Metrics;
  gc: GcSchedule;
  scrub: { stop(): Promise<void> };
  /** The chunk cache and its prefetcher, when `cache` is configured. */
  cache?: CacheApiParts;
}

export type Composed<P extends Parts> = P extends "server"
  ? ServerParts
  : P extends "images"
    ? ImageParts
    : EngineParts;

export interface ComposeOptions {
  /** Where the schedules log ("server"; default: nowhere). */
  log?: Logger;
  /**
   * Node's crypto name for `osHashAlgo`, for an embedder that names it; by default the hashlib
   * name's Node spelling (nodeHashName).
   */
  osHashNodeName?: string;
  /**
   * Build a cluster worker's server ("server"): no recovery at open (a worker restarting must
   * not reset another's uploads and imports in progress), no schedules and no store figures;
   * `gc` runs a collection where the schedules are, `exposition` answers GET /metrics for the node.
   */
  worker?: { gc: GcSchedule; exposition: () => Promise<string> };
  /** web-download's DNS step (default: the system's); tests give one that never leaves loopback. */
  webDownloadResolver?: Resolver;
}

/**
 * Opens the data directory of `cfg` and builds `parts` over it. Takes no lock: the caller holds
 * the directory's lock when `parts` writes ("images", "server"). On a failure it closes what it
 * had opened and throws; on success the caller owns the parts and must call `close()`.
 */
export async function compose<P extends Parts>(
  cfg: ServerConfig,
  parts: P,
  options: ComposeOptions = {},
): Promise<Composed<P>> {
  // The chunk cache outlives the engine that reads through it: opened first, closed last.
  const chunkCache = await openChunkCache(cfg.cache, cfg.dataDir);
  // A node is a data directory on a host: its leases say so, for its own recovery at start.
  const node = `${hostname()}:${resolve(cfg.dataDir)}`;
  const engine = await Engine.openDir(cfg.dataDir, {
    node,
    stores: cfg.stores,
    defaultStore: cfg.defaultStore,
    readOrder: cfg.storeReadOrder.length > 0 ? cfg.storeReadOrder : undefined,
    durable: cfg.fsync,
    hashAlgorithms: ["md5", options.osHashNodeName ?? nodeHashName(cfg.osHashAlgo)],
    chunker: cfg.chunkSize === 0 ? undefined : chunkerForAverage(cfg.chunkSize),
    verifyOnRead: cfg.verifyOnRead,
    chunkCache,
    catalog: cfg.catalog,
    leaseMs: cfg.leaseSeconds * 1000,
    locationCacheEntries: cfg.locationCacheEntries,
  }).catch(async (e: unknown) => {
    await chunkCache?.close();
    throw e;
  });
  // What is open so far, closed in reverse order by close() or by a failed build.
  const closers: (() => unknown)[] = [() => chunkCache?.close(), () => engine.close()];
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      for (const c of [...closers].reverse()) await c();
    })();
    return closing;
  };
  try {
    const built: EngineParts = { config: cfg, engine, close };
    if (parts === "engine") return built as Composed<P>;
    // Authentication first: a tokens file that does not load stops a start before any record changes.
    const auth = parts === "server" ? openAuthenticator(cfg.auth) : undefined;
    if (auth) closers.push(() => auth.close?.());
    const images = await ImageService.open(engine, {
      sizeCap: cfg.imageSizeCap,
      osHashAlgo: cfg.osHashAlgo,
      formats: cfg.formats,
      quotas: cfg.quotas,
      memberQuota: cfg.imageMemberQuota,
      dedupWriteThrough: cfg.dedupWriteThrough,
      recover: !options.worker,
      node,
      log: options.log,
    });
    // Before the engine closes: saves of record objects still going on behind their requests.
    closers.push(() => images.recordsSaved());
    if (!auth) return { ...built, images } as Composed<P>;
    const server = await serverParts(cfg, engine, images, options, node, closers);
    const cache = chunkCache && serveCache(chunkCache, images, server.metrics, options.log, closers);
    return { ...built, images, auth, ...server, cache } as Composed<P>;
  } catch (e) {
    await close();
    throw e;
  }
}

/** Imports, metrics and the schedules, added to `closers` so that imports close first, as before. */
async function serverParts(
  cfg: ServerConfig,
  engine: Engine,
  images: ImageService,
  options: ComposeOptions,
  node: string,
  closers: (() => unknown)[],
): Promise<Pick<ServerParts, "imports" | "metrics" | "gc" | "scrub">> {
  const log = options.log ?? pino({ level: "silent" });
  const imports = await Imports.open(images, {
    methods: cfg.importMethods,
    filter: cfg.importFilter,
    webDownload: {
      idleTimeoutMs: cfg.webDownloadIdleTimeoutSeconds * 1000,
      maxRedirects: cfg.webDownloadMaxRedirects,
      resolver: options.webDownloadResolver,
    },
    convertTo: cfg.importPlugins.imageConversion?.outputFormat,
    injectProperties: cfg.importPlugins.injectMetadata?.properties,
    injectIgnoreRoles: cfg.importPlugins.injectMetadata?.ignoreUserRoles ?? ["admin"],
    maxWebDownloads: cfg.maxUploads,
    recover: !options.worker,
    node,
  });
  const { worker } = options;
  if (worker) {
    const metrics = createMetrics(images, { storeFigures: false, exposition: worker.exposition });
    closers.push(() => imports.close());
    return { imports, metrics, gc: worker.gc, scrub: { stop: async () => {} } };
  }
  const metrics = createMetrics(images);
  const gc = startGcSchedule(
    engine,
    {
      intervalSeconds: cfg.gcIntervalSeconds,
      graceSeconds: cfg.gcGraceSeconds,
      onReport: metrics.gc,
      onProgress: metrics.gcProgress,
    },
    log,
  );
  const scrub = startScrubSchedule(
    engine,
    {
      intervalSeconds: cfg.scrubIntervalSeconds,
      bytesPerSecond: cfg.scrubBytesPerSecond,
      onReport: metrics.scrub,
      onProgress: metrics.scrubProgress,
    },
    log,
  );
  // Uploads a crash cut off (a worker's here, any node's on a shared catalog) go back to queued
  // once their lease is gone, without waiting for a restart.
  const requeue = every(Math.min(REQUEUE_SECONDS, cfg.leaseSeconds / 2), async () => {
    try {
      const n = await requeueAbandoned(engine.catalog, () => images.now());
      if (n > 0) log.warn({ images: n }, "uploads cut off by a crash: their images are queued again");
    } catch (err) {
      log.error({ err }, "requeueing abandoned uploads failed");
    }
  });
  // Closed in reverse: imports first (their tasks settle), then the schedules, as a shutdown did.
  closers.push(
    () => requeue.stop(),
    () => scrub.stop(),
    () => gc.stop(),
    () => imports.close(),
  );
  return { imports, metrics, gc, scrub };
}

/**
 * The cache's part of a server: its metrics, and the prefetcher of queued images (one per
 * process; they share the queue), stopped before the engine and the cache close.
 */
function serveCache(
  cache: ChunkCache,
  images: ImageService,
  metrics: Metrics,
  log: Logger | undefined,
  closers: (() => unknown)[],
): CacheApiParts {
  registerCacheMetrics(metrics.registry, cache);
  const prefetcher = startPrefetcher(
    cache,
    {
      resolve: async (name) => {
        const rec = await images.get(name).catch(() => undefined);
        if (rec?.status !== "active" || !rec.object || rec.size === null) return undefined;
        return { object: rec.object, size: rec.size };
      },
      read: (object) => images.engine.read(object),
    },
    { log },
  );
  closers.push(() => prefetcher.stop());
  return { cache, prefetcher };
}
