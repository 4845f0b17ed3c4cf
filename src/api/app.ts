/**
 * The Glance Images API v2 as a Hono app over the image service: the request log and metrics,
 * errors through errors.ts, authentication, then the route modules, each a Hono app mounted
 * here, and the 405 answers derived from what they serve.
 */

import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Hono } from "hono";
import type { Logger } from "pino";
import { type Authenticator, NoAuth } from "../auth/authenticator.js";
import { BusyError } from "../errors.js";
import { FormatRejectedError } from "../formats/rules.js";
import { ImageMembers } from "../images/image-members.js";
import type { ImageService } from "../images/images.js";
import type { Imports } from "../images/imports.js";
import { Metadefs } from "../metadefs/metadefs.js";
import type { GcSchedule } from "../schedules/gc.js";
import { AccessPolicy } from "./access.js";
import { adminRoutes } from "./admin-routes.js";
import { authenticate } from "./authenticate.js";
import { type CacheApiParts, cacheReads, cacheRoutes } from "./cache-routes.js";
import type { Env } from "./env.js";
import { errorResponse, responseForError } from "./errors.js";
import { healthRoutes } from "./health-routes.js";
import type { ImageLimits } from "./image-changes.js";
import { imageDataRoutes } from "./image-data-routes.js";
import { imageRoutes } from "./image-routes.js";
import { importRoutes } from "./import-routes.js";
import type { ListLimits } from "./list-query.js";
import { memberRoutes } from "./member-routes.js";
import { metadefItemRoutes } from "./metadef-item-routes.js";
import { metadefRoutes } from "./metadef-routes.js";
import { answerOtherMethods } from "./method-not-allowed.js";
import type { Metrics } from "./metrics.js";
import { metricsRoutes } from "./metrics-routes.js";
import { type ReadJson, readJson } from "./read-json.js";
import { baseUrl, type OriginOptions, requestOrigin } from "./request-origin.js";
import { schemaRoutes } from "./schema-routes.js";
import { storeRoutes } from "./store-routes.js";
import { uploadTracker } from "./track-upload.js";
import { versionRoutes } from "./version-routes.js";

export interface ApiOptions {
  limits: ImageLimits & ListLimits;
  /** Largest JSON request body accepted (413 beyond). */
  maxJsonBodyBytes: number;
  logger: Logger;
  /** Uploads and stages at once; past it, 503 (0 or absent: no limit). */
  maxUploads?: number;
  /** Requests in flight, so that shutdown can abort uploads and wait for downloads. */
  inflight?: Inflight;
  /** Garbage collection runs on demand go through it (POST /tessera/v1/gc); absent, no route. */
  gc?: GcSchedule;
  /** Prometheus metrics (GET /metrics); absent, none kept. */
  metrics?: Metrics;
  /** How requests are authenticated (default: none, every caller a local admin). */
  auth?: Authenticator;
  /** A token that is always a local admin (the server's own, for local tools). */
  localToken?: string;
  /** Interoperable image import (stage, import, tasks); absent, no import routes. */
  imports?: Imports;
  /** The node-local chunk cache and its prefetcher (the /v2/cache routes); absent, no cache. */
  cache?: CacheApiParts;
  /** The public endpoint and the proxies whose X-Forwarded-* are believed (request-origin.ts). */
  origin?: OriginOptions;
  /** Addresses and CIDR ranges that may read GET /metrics without a token (metrics-routes.ts). */
  metricsScrapers?: string[];
}

export interface Inflight {
  uploads: Set<IncomingMessage>;
  downloads: Set<ServerResponse>;
}

export function createApp(images: ImageService, opts: ApiOptions): Hono<Env> {
  const app = new Hono<Env>();
  const inflight = opts.inflight ?? { uploads: new Set(), downloads: new Set() };

  // Request id on every response, and one log line per request once its response is done.
  app.use(async (c, next) => {
    const requestId = `req-${randomUUID()}`;
    const started = performance.now();
    c.set("requestId", requestId);
    const out = c.env.outgoing;
    out.setHeader("x-openstack-request-id", requestId);
    out.once("close", () => {
      const seconds = (performance.now() - started) / 1000;
      // The route pattern, not the path: one series per route, whatever the ids.
      const route = c.req.routePath === "/*" ? "unmatched" : c.req.routePath;
      opts.metrics?.request({ method: c.req.method, route, status: out.statusCode, seconds });
      opts.logger.info({
        req_id: requestId,
        method: c.req.method,
        path: c.req.path,
        remote: c.get("client"),
        query: new URL(c.req.url).search || undefined,
        status: out.statusCode,
        bytes_in: Number(c.req.header("content-length") ?? 0),
        bytes_out: Number(out.getHeader("content-length") ?? 0),
        complete: out.writableFinished,
        ms: Math.round(performance.now() - started),
      });
    });
    await next();
  });
  app.use(requestOrigin(opts.origin ?? {}));

  app.onError((err, c) => {
    const res = responseForError(c, err);
    // A refusal the server chose (too busy) is a warning; anything else, an error.
    const at = { req_id: c.get("requestId") };
    if (err instanceof BusyError) opts.logger.warn({ ...at, err: err.message }, "refused");
    else if (res.status >= 500) opts.logger.error({ ...at, err }, "request failed");
    // Hostile images are worth an operator's attention: which rules, on which image.
    if (err instanceof FormatRejectedError) {
      const rules = err.violations.map((v) => v.rule);
      opts.logger.warn({ req_id: c.get("requestId"), path: c.req.path, rules }, "image content rejected");
    }
    return res;
  });
  app.notFound((c) => errorResponse(c, 404, "The resource could not be found."));
  // Before authentication, as Glance's: load balancers check it without credentials.
  app.route("/", healthRoutes(images.engine.catalog));
  const authn = authenticate(opts.auth ?? new NoAuth(), opts.localToken);
  // Before authentication too, which it applies itself to callers other than the scrapers.
  if (opts.metrics) app.route("/", metricsRoutes(opts.metrics, opts.metricsScrapers ?? [], authn));
  app.use(authn);

  const policy = new AccessPolicy(images);
  const json: ReadJson = (c) => readJson(c, opts.maxJsonBodyBytes);
  const track = uploadTracker(inflight.uploads, opts.maxUploads);
  app.route("/", versionRoutes(opts.cache !== undefined));
  app.route("/", schemaRoutes(opts.imports !== undefined));
  app.route(
    "/",
    imageRoutes(images, policy, {
      limits: opts.limits,
      readJson: json,
      importMethods: opts.imports?.options.methods,
    }),
  );
  app.route(
    "/",
    imageDataRoutes(images, policy, {
      track,
      downloads: inflight.downloads,
      logger: opts.logger,
      metrics: opts.metrics,
      cacheReads: opts.cache && cacheReads(images, opts.cache),
    }),
  );
  app.route("/", storeRoutes(images, policy));
  app.route("/", cacheRoutes(images, policy, opts.cache));
  app.route("/", memberRoutes(new ImageMembers(images), policy, json));
  const metadefs = new Metadefs(images.engine.catalog);
  app.route("/", metadefRoutes(metadefs, policy, json));
  app.route("/", metadefItemRoutes(metadefs, policy, json));
  if (opts.imports) app.route("/", importRoutes(opts.imports, policy, { readJson: json, track }));
  if (opts.gc) app.route("/", adminRoutes(images, opts.gc, json));
  answerOtherMethods(app);
  // Version negotiation rather than a resource: other methods on /v2 are a 404, not a 405, so
  // it comes after the 405 answers.
  app.get("/v2", (c) => c.redirect(`${baseUrl(c)}/v2/`, 302));
  return app;
}
