/** Glance's version documents: GET / (300, as version negotiation) and GET /versions (200). */
import { type Context, Hono } from "hono";
import type { Env } from "./env.js";

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
export function baseUrl(c: Context): string {
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

export function versionRoutes(): Hono<Env> {
  const app = new Hono<Env>();
  const versions = (status: 200 | 300) => (c: Context) => c.json(versionsDocument(c), status);
  app.get("/", versions(300));
  app.get("/versions", versions(200));
  return app;
}
