/**
 * An image's data: PUT and GET /v2/images/{id}/file. The upload reads the Node request stream
 * and the download writes the Node response directly (with backpressure): at image sizes the
 * Web-stream adapters cost a third of the throughput, and direct access lets shutdown abort an
 * upload by destroying its request.
 */
import type { ServerResponse } from "node:http";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import { Hono } from "hono";
import type { Logger } from "pino";
import type { ImageService } from "../images/images.js";
import type { AccessPolicy } from "./access.js";
import type { CacheReads } from "./cache-routes.js";
import { checkedAgainst, declaredSize } from "./declared-size.js";
import type { Env } from "./env.js";
import { mediaType, unsupportedMediaType } from "./media-type.js";
import type { Metrics } from "./metrics.js";
import { parseRange } from "./range.js";
import type { TrackUpload } from "./track-upload.js";
import { writePieces } from "./write-pieces.js";

export function imageDataRoutes(
  images: ImageService,
  policy: AccessPolicy,
  opts: {
    track: TrackUpload;
    /** Downloads in flight, which shutdown waits for. */
    downloads: Set<ServerResponse>;
    logger: Logger;
    metrics?: Metrics;
    /** Tells the chunk cache which images are read (cache-routes.ts); absent, no cache. */
    cacheReads?: CacheReads;
  },
): Hono<Env> {
  const app = new Hono<Env>();

  app.put("/v2/images/:id/file", async (c) => {
    const type = mediaType(c);
    if (type !== undefined && type !== "application/octet-stream") throw unsupportedMediaType(type);
    const began = performance.now();
    const access = policy.to(c.get("auth"), "upload_image");
    const body = checkedAgainst(c.env.incoming, declaredSize(c.req.header("x-openstack-image-size")));
    const rec = await opts.track(c, () =>
      images.upload(c.req.param("id"), body, c.req.header("x-image-meta-store"), access),
    );
    opts.metrics?.upload(rec.size ?? 0, (performance.now() - began) / 1000);
    return c.body(null, 204);
  });

  app.get("/v2/images/:id/file", async (c, next) => {
    // Hono dispatches HEAD as GET; Glance refuses HEAD on image data, as any method not served.
    if (c.req.method === "HEAD") return next();
    const access = policy.download(c.get("auth"));
    const image = await images.get(c.req.param("id"), access);
    const range = image.size === null ? undefined : parseRange(c.req.header("range"), image.size);
    // Glance's newest: ?prefer=store1,store2, the stores to read from first.
    const prefer = (c.req.query("prefer") ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    const dl = await images.download(image.id, range, access, prefer);
    if (!dl.body) return c.body(null, 204);
    const out = c.env.outgoing;
    const headers: Record<string, string | number> = {
      "Content-Type": "application/octet-stream",
      "Content-Length": dl.end - dl.start,
    };
    if (image.checksum) headers["Content-MD5"] = image.checksum;
    if (range) headers["Content-Range"] = `bytes ${dl.start}-${dl.end - 1}/${image.size}`;
    const cached = await opts.cacheReads?.(image, dl.start, dl.end);
    out.writeHead(range ? 206 : 200, headers);
    opts.downloads.add(out);
    try {
      const began = performance.now();
      await writePieces(dl.body, out);
      opts.metrics?.download(dl.end - dl.start, (performance.now() - began) / 1000);
      cached?.();
    } catch (err) {
      if (!out.destroyed) out.destroy();
      opts.logger.warn({ req_id: c.get("requestId"), err: String(err) }, "download ended early");
    } finally {
      opts.downloads.delete(out);
    }
    return RESPONSE_ALREADY_SENT;
  });

  return app;
}
