/**
 * What every metadefs route checks of its request before the service sees it: the body a JSON
 * object, without read-only attributes (403, as Glance checks them first), matching its schema,
 * and no NUL anywhere in it or in the path (PostgreSQL's text cannot hold one, and no name
 * Glance's database keeps has one); HEAD answered as Glance answers it (405), not as a GET.
 */
import type { Context, Handler, Hono } from "hono";
import { BadRequestError, ForbiddenError } from "../errors.js";
import type { Env } from "./env.js";
import type { ReadJson } from "./read-json.js";

const READ_ONLY = ["created_at", "updated_at", "schema", "self"];

function holdsNul(v: unknown): boolean {
  if (typeof v === "string") return v.includes("\0");
  if (Array.isArray(v)) return v.some(holdsNul);
  if (typeof v === "object" && v !== null)
    return Object.entries(v).some(([k, x]) => k.includes("\0") || holdsNul(x));
  return false;
}

const NUL = "Metadata definitions can't contain NUL characters.";

/** A body checked against a metadefs schema, read-only attributes first. */
export async function metadefBody<T>(
  c: Context<Env>,
  readJson: ReadJson,
  check: (doc: unknown) => void,
): Promise<T> {
  const body = await readJson(c);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new BadRequestError("The request body must be a JSON object.");
  }
  for (const key of READ_ONLY) {
    if (Object.hasOwn(body, key)) throw new ForbiddenError(`Attribute '${key}' is read-only.`);
  }
  check(body);
  if (holdsNul(body)) throw new BadRequestError(NUL);
  return body as T;
}

/** Refuses a path with a NUL in it (%00) before any route reads the catalog with it. */
export function refuseNulPaths(app: Hono<Env>): void {
  app.use("/v2/metadefs/*", async (c, next) => {
    let path: string;
    try {
      path = decodeURIComponent(c.req.path);
    } catch {
      throw new BadRequestError("The path is not valid percent-encoded UTF-8.");
    }
    if (path.includes("\0")) throw new BadRequestError(NUL);
    await next();
  });
}

/** A GET route that leaves HEAD to the 405 answers (Hono would run the GET for it). */
export function getOnly<P extends string>(app: Hono<Env>, path: P, handler: Handler<Env, P>): void {
  app.get(path, (c, next) => (c.req.method === "HEAD" ? next() : handler(c, next)));
}
