/**
 * GET /metrics: for admins, and without a token for the configured scrapers (`metricsScrapers`),
 * so that Prometheus can read a node whose API needs Keystone without holding a token or an
 * admin's password: Prometheus cannot log in to Keystone, and a long-lived static admin token
 * would open far more than the metrics. The allowance is by address only (the client's as
 * request-origin.ts decides it: the peer, or from a trusted proxy the address it forwards);
 * it reads the metrics and nothing else. Any other caller is authenticated as for every route.
 */
import { Hono, type MiddlewareHandler } from "hono";
import { addressList, listed } from "../auth/trusted-headers.js";
import { type Env, requireAdmin } from "./env.js";
import type { Metrics } from "./metrics.js";

export function metricsRoutes(
  metrics: Metrics,
  scrapers: string[],
  authenticate: MiddlewareHandler<Env>,
): Hono<Env> {
  const allowed = addressList(scrapers);
  const app = new Hono<Env>();
  app.get(
    "/metrics",
    (c, next) => (listed(allowed, c.get("client")) ? next() : authenticate(c, next)),
    async (c) => {
      if (!listed(allowed, c.get("client"))) requireAdmin(c, "get_metrics");
      return c.body(await metrics.exposition(), 200, { "Content-Type": metrics.registry.contentType });
    },
  );
  return app;
}
