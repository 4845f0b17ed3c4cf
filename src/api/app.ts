/**
 * The Glance Images API v2 as a Hono app over the image service. Routes translate HTTP to
 * ImageService calls and records to Glance's JSON; every error goes through errors.ts.
 * Uploads read the Node request stream and downloads write the Node response directly (with
 * backpressure): at image sizes the Web-stream adapters cost a third of the throughput, and
 * direct access lets shutdown abort an upload by destroying its request.
 */

import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import { type Context, Hono } from "hono";
import type { Logger } from "pino";
import { type Authenticator, NoAuth } from "../auth/authenticator.js";
import { listable, mayCreate, mayList, allowed as policyAllows, visibilityAction } from "../auth/policy.js";
import { BusyError, ForbiddenError } from "../errors.js";
import { FormatRejectedError } from "../formats/rules.js";
import { ImageMembers } from "../images/image-members.js";
import type { ImageService } from "../images/images.js";
import type { Imports } from "../images/imports.js";
import { AccessPolicy, notAuthorized } from "./access.js";
import { addAdminRoutes } from "./admin-routes.js";
import { authenticate } from "./authenticate.js";
import { type Env, requireAdmin } from "./env.js";
import { errorResponse, HttpError, responseForError } from "./errors.js";
import type { GcSchedule } from "./gc-schedule.js";
import { addTag, applyPatch, type ImageLimits, imageFromCreateBody, removeTag } from "./image-changes.js";
import { imageView } from "./image-view.js";
import { addImportRoutes } from "./import-routes.js";
import { PATCH_TYPES, parsePatch } from "./json-patch.js";
import { type ListLimits, listLinks, parseListQuery } from "./list-query.js";
import { addMemberRoutes } from "./member-routes.js";
import type { Metrics } from "./metrics.js";
import { parseRange } from "./range.js";
import { readJson } from "./read-json.js";
import { IMAGE_SCHEMA, IMAGES_SCHEMA, MEMBER_SCHEMA, MEMBERS_SCHEMA } from "./schemas.js";
import { addStoreRoutes, storeIdsHeader } from "./store-routes.js";
import { writePieces } from "./write-pieces.js";

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
}

export interface Inflight {
  uploads: Set<IncomingMessage>;
  downloads: Set<ServerResponse>;
}

/** Glance's versions in multi-store mode (v2.8 and v2.10–v2.13 are the multi-store ones). */
const VERSION_IDS = [
  "v2.16",
  "v2.15",
  "v2.14",
  "v2.13",
  "v2.12",
  "v2.11",
  "v2.10",
  "v2.9",
  "v2.8",
  "v2.7",
  "v2.6",
  "v2.5",
  "v2.4",
  "v2.3",
  "v2.2",
  "v2.1",
  "v2.0",
];

/** This server as the client addressed it (Glance builds its links the same way). */
function baseUrl(c: Context): string {
  return `http://${c.req.header("host") ?? "127.0.0.1:9292"}`;
}

function versionsDocument(c: Context): unknown {
  const href = `${baseUrl(c)}/v2/`;
  return {
    versions: VERSION_IDS.map((id, i) => ({
      id,
      status: i === 0 ? "CURRENT" : "SUPPORTED",
      links: [{ rel: "self", href }],
    })),
  };
}

function mediaType(c: Context): string | undefined {
  return c.req.header("content-type")?.split(";")[0].trim().toLowerCase();
}

function unsupportedMediaType(type: string | undefined, headers: Record<string, string> = {}): HttpError {
  return new HttpError(
    415,
    `The request media type ${type ?? "(none)"} is not supported by this server.\n`,
    headers,
  );
}

export function createApp(images: ImageService, opts: ApiOptions): Hono<Env> {
  const app = new Hono<Env>();
  const { limits } = opts;
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
  app.use(authenticate(opts.auth ?? new NoAuth(), opts.localToken));
  const policy = new AccessPolicy(images);

  const versions = (status: 200 | 300) => (c: Context) => c.json(versionsDocument(c), status);
  app.get("/", versions(300));
  app.get("/versions", versions(200));
  app.get("/v2", (c) => c.redirect(`${baseUrl(c)}/v2/`, 302));

  app.get("/v2/schemas/image", (c) => c.json(IMAGE_SCHEMA));
  app.get("/v2/schemas/images", (c) => c.json(IMAGES_SCHEMA));
  app.get("/v2/schemas/member", (c) => c.json(MEMBER_SCHEMA));
  app.get("/v2/schemas/members", (c) => c.json(MEMBERS_SCHEMA));

  app.post("/v2/images", async (c) => {
    const type = mediaType(c);
    if (type !== undefined && type !== "application/json") throw unsupportedMediaType(type);
    const fields = imageFromCreateBody(await readJson(c, opts.maxJsonBodyBytes), limits);
    const ctx = c.get("auth");
    // Glance: an image is its creator's project's unless the body says otherwise (add_image).
    if (!("owner" in fields)) fields.owner = ctx.projectId;
    const owner = fields.owner ?? null;
    if (!mayCreate(ctx, owner)) {
      if (owner !== ctx.projectId)
        throw new ForbiddenError(`You are not permitted to create images owned by '${owner}'.`);
      throw notAuthorized("add_image");
    }
    const visibility = fields.visibility ?? "shared";
    const publish = visibilityAction(visibility);
    if (publish && !policyAllows(ctx, publish, { owner, visibility, status: "queued" })) {
      throw notAuthorized(publish);
    }
    const rec = await images.create(fields);
    c.header("Location", `${baseUrl(c)}/v2/images/${rec.id}`);
    c.header("OpenStack-image-store-ids", storeIdsHeader(images));
    if (opts.imports) c.header("OpenStack-image-import-methods", opts.imports.options.methods.join(","));
    return c.json(imageView(rec), 201);
  });

  app.get("/v2/images", (c) => {
    const ctx = c.get("auth");
    if (!mayList(ctx)) throw notAuthorized("get_images");
    const query = new URL(c.req.url).searchParams;
    const q = parseListQuery(query, limits);
    const page = images.list({
      ...q,
      match: (r) => listable(ctx, r, images.membership(r.id, ctx.projectId), q) && q.match(r),
      sees: (r) => policy.sees(ctx, r),
    });
    return c.json({
      images: page.map(imageView),
      ...listLinks(query, page, q.limit),
      schema: "/v2/schemas/images",
    });
  });

  app.get("/v2/images/:id", (c) =>
    c.json(imageView(images.get(c.req.param("id"), policy.to(c.get("auth"), "get_image")))),
  );

  app.patch("/v2/images/:id", async (c) => {
    const type = mediaType(c);
    if (!type || !PATCH_TYPES.includes(type)) {
      throw unsupportedMediaType(type, { "Accept-Patch": PATCH_TYPES.join(", ") });
    }
    const id = c.req.param("id");
    const ctx = c.get("auth");
    const access = policy.to(ctx, "modify_image");
    images.get(id, access);
    const ops = parsePatch(await readJson(c, opts.maxJsonBodyBytes), type);
    const rec = await images.update(
      id,
      (r) => {
        for (const op of ops) {
          const [name] = op.path;
          // Glance refuses a non-admin's replace of owner; Tessera refuses every owner change
          // by a non-admin (Glance's add would give the image away).
          if (name === "owner" && !ctx.isAdmin)
            throw new ForbiddenError("Owner can't be updated by non admin.");
          const publish =
            name === "visibility" && op.op !== "remove" ? visibilityAction(String(op.value)) : undefined;
          if (publish && !policyAllows(ctx, publish, r)) throw notAuthorized(publish);
        }
        return applyPatch(r, ops, limits);
      },
      access,
    );
    return c.json(imageView(rec));
  });

  app.delete("/v2/images/:id", async (c) => {
    await images.remove(c.req.param("id"), policy.to(c.get("auth"), "delete_image"));
    return c.body(null, 204);
  });

  /** Runs `fn` reading the request body as image data: shutdown can cut it off. */
  async function trackUpload<T>(c: Context<Env>, fn: () => Promise<T>): Promise<T> {
    const req = c.env.incoming;
    const busy = opts.maxUploads && inflight.uploads.size >= opts.maxUploads;
    try {
      if (busy)
        throw new BusyError(`The server has ${inflight.uploads.size} uploads in progress: try again later.`);
      inflight.uploads.add(req);
      return await fn();
    } catch (e) {
      // The body may be unread; this connection cannot carry another request.
      c.header("Connection", "close");
      throw e;
    } finally {
      inflight.uploads.delete(req);
    }
  }

  app.put("/v2/images/:id/file", async (c) => {
    const type = mediaType(c);
    if (type !== undefined && type !== "application/octet-stream") throw unsupportedMediaType(type);
    const began = performance.now();
    const access = policy.to(c.get("auth"), "upload_image");
    const rec = await trackUpload(c, () =>
      images.upload(c.req.param("id"), c.env.incoming, c.req.header("x-image-meta-store"), access),
    );
    opts.metrics?.upload(rec.size ?? 0, (performance.now() - began) / 1000);
    return c.body(null, 204);
  });

  app.get("/v2/images/:id/file", async (c) => {
    // Hono dispatches HEAD as GET; Glance refuses HEAD on image data.
    if (c.req.method === "HEAD") {
      throw new HttpError(405, "The method HEAD is not allowed for this resource.", { Allow: "GET, PUT" });
    }
    const access = policy.download(c.get("auth"));
    const image = images.get(c.req.param("id"), access);
    const range = image.size === null ? undefined : parseRange(c.req.header("range"), image.size);
    const dl = images.download(image.id, range, access);
    if (!dl.body) return c.body(null, 204);
    const out = c.env.outgoing;
    const headers: Record<string, string | number> = {
      "Content-Type": "application/octet-stream",
      "Content-Length": dl.end - dl.start,
    };
    if (image.checksum) headers["Content-MD5"] = image.checksum;
    if (range) headers["Content-Range"] = `bytes ${dl.start}-${dl.end - 1}/${image.size}`;
    out.writeHead(range ? 206 : 200, headers);
    inflight.downloads.add(out);
    try {
      const began = performance.now();
      await writePieces(dl.body, out);
      opts.metrics?.download(dl.end - dl.start, (performance.now() - began) / 1000);
    } catch (err) {
      if (!out.destroyed) out.destroy();
      opts.logger.warn({ req_id: c.get("requestId"), err: String(err) }, "download ended early");
    } finally {
      inflight.downloads.delete(out);
    }
    return RESPONSE_ALREADY_SENT;
  });

  addStoreRoutes(app, images, policy);
  addMemberRoutes(app, new ImageMembers(images), policy, (c) => readJson(c, opts.maxJsonBodyBytes));
  app.get("/v2/info/usage", (c) => c.json({ usage: images.usage(c.get("auth").projectId) }));
  if (opts.imports) {
    addImportRoutes(app, opts.imports, policy, {
      readJson: (c) => readJson(c, opts.maxJsonBodyBytes),
      track: trackUpload,
    });
  }
  const metrics = opts.metrics;
  if (metrics) {
    app.get("/metrics", async (c) => {
      requireAdmin(c, "get_metrics");
      return c.body(await metrics.registry.metrics(), 200, { "Content-Type": metrics.registry.contentType });
    });
  }
  if (opts.gc) addAdminRoutes(app, images, opts.gc, (c) => readJson(c, opts.maxJsonBodyBytes));

  app.put("/v2/images/:id/tags/:tag", async (c) => {
    await images.update(
      c.req.param("id"),
      (r) => addTag(r, c.req.param("tag"), limits),
      policy.to(c.get("auth"), "modify_image"),
    );
    return c.body(null, 204);
  });

  app.delete("/v2/images/:id/tags/:tag", async (c) => {
    await images.update(
      c.req.param("id"),
      (r) => removeTag(r, c.req.param("tag")),
      policy.to(c.get("auth"), "modify_image"),
    );
    return c.body(null, 204);
  });

  app.post("/v2/images/:id/actions/deactivate", async (c) => {
    await images.deactivate(c.req.param("id"), policy.to(c.get("auth"), "deactivate"));
    return c.body(null, 204);
  });
  app.post("/v2/images/:id/actions/reactivate", async (c) => {
    await images.reactivate(c.req.param("id"), policy.to(c.get("auth"), "reactivate"));
    return c.body(null, 204);
  });

  // Known paths with an unsupported method: 405 with Allow, as Glance.
  const allowed: [string, string][] = [
    ["/v2/images", "GET, POST"],
    ["/v2/images/:id", "GET, PATCH, DELETE"],
    ["/v2/images/:id/file", "GET, PUT"],
    ["/v2/images/:id/tags/:tag", "PUT, DELETE"],
    ["/v2/images/:id/actions/deactivate", "POST"],
    ["/v2/images/:id/actions/reactivate", "POST"],
    ["/v2/images/:id/members", "GET, POST"],
    ["/v2/images/:id/members/:member", "GET, PUT, DELETE"],
    ["/v2/info/usage", "GET"],
    ["/v2/info/import", "GET"],
    ["/v2/images/:id/stage", "PUT"],
    ["/v2/images/:id/import", "POST"],
    ["/v2/images/:id/tasks", "GET"],
    ["/v2/tasks", "GET"],
    ["/v2/tasks/:id", "GET"],
    ["/v2/schemas/:name", "GET"],
    ["/v2/info/stores", "GET"],
    ["/v2/info/stores/detail", "GET"],
    ["/v2/stores/:store/:id", "DELETE"],
    ["/tessera/v1/gc", "POST"],
    ["/metrics", "GET"],
    ["/tessera/v1/stats", "GET"],
    ["/tessera/v1/images/:id/stats", "GET"],
    ["/", "GET"],
    ["/versions", "GET"],
  ];
  for (const [path, allow] of allowed) {
    app.all(path, (c) => {
      if (allow.split(", ").includes(c.req.method))
        return errorResponse(c, 404, "The resource could not be found.");
      throw new HttpError(405, `The method ${c.req.method} is not allowed for this resource. `, {
        Allow: allow,
      });
    });
  }
  return app;
}
