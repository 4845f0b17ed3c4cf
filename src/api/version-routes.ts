/** Glance's version documents: GET / (300, as version negotiation) and GET /versions (200). */
import { type Context, Hono } from "hono";
import type { Env } from "./env.js";
import { baseUrl } from "./request-origin.js";

/**
 * Glance's versions in multi-store mode (v2.8 and v2.10–v2.13 are the multi-store ones), as
 * Zed's glance/api/versions.py lists them: v2.14 and v2.16 (the cache API) only when an image
 * cache is configured, v2.15 the current one otherwise. (Glance 2026.1's v2.18, with POST
 * /v2/cache/clean and /prune, also implies v2.17's location API, which is not served here.)
 */
const MULTI_STORE = ["v2.13", "v2.12", "v2.11", "v2.10", "v2.9", "v2.8"];
const BASE = ["v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0"];
const WITH_CACHE = ["v2.16", "v2.15", "v2.14", ...MULTI_STORE, ...BASE];
const WITHOUT_CACHE = ["v2.15", ...MULTI_STORE, ...BASE];

/** Every link is to /v2/ under the public endpoint, or this server as the client addressed it. */
function versionsDocument(c: Context<Env>, ids: string[]): unknown {
  const href = `${baseUrl(c)}/v2/`;
  return {
    versions: ids.map((id, i) => ({
      id,
      status: i === 0 ? "CURRENT" : "SUPPORTED",
      links: [{ rel: "self", href }],
    })),
  };
}

/** The version documents; `cache`: whether the cache API is served (an image cache is configured). */
export function versionRoutes(cache: boolean): Hono<Env> {
  const app = new Hono<Env>();
  const ids = cache ? WITH_CACHE : WITHOUT_CACHE;
  const versions = (status: 200 | 300) => (c: Context<Env>) => c.json(versionsDocument(c, ids), status);
  app.get("/", versions(300));
  app.get("/versions", versions(200));
  return app;
}
