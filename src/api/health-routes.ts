/**
 * GET /healthcheck, as Glance's (oslo.middleware's healthcheck, before authentication): 200
 * "OK" while this node can serve, 503 "FAILED" when it cannot reach its catalog, so that a load
 * balancer sends no requests to a node that would answer them all with 503. One cheap catalog
 * read per check.
 */
import { Hono } from "hono";
import type { Catalog } from "../catalog/catalog.js";

export function healthRoutes(catalog: Catalog): Hono {
  const app = new Hono();
  app.get("/healthcheck", async (c) => {
    c.header("Content-Type", "text/plain; charset=UTF-8");
    try {
      await catalog.getMeta("format");
      return c.body("OK", 200);
    } catch {
      return c.body("FAILED", 503);
    }
  });
  return app;
}
