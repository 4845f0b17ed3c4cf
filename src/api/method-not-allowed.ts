/**
 * A known path asked with a method it does not serve is a 405 with `Allow`, as in Glance. The
 * answers are derived from the routes registered, so that a new route cannot lack its own.
 */
import type { Hono } from "hono";
import type { Env } from "./env.js";
import { HttpError } from "./errors.js";

/** The order Allow names methods in, Glance's ("GET, PATCH, DELETE"). */
const METHOD_ORDER = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/** Whether route pattern `general` matches every path `specific` matches. */
function covers(general: string, specific: string): boolean {
  const g = general.split("/");
  const s = specific.split("/");
  return g.length === s.length && g.every((seg, i) => seg === s[i] || seg.startsWith(":"));
}

/**
 * Adds the 405 answer of every path the app serves so far: call it after the last route. Hono
 * dispatches HEAD as GET, so a HEAD reaches these answers only where a GET route passes it on.
 */
export function answerOtherMethods(app: Hono<Env>): void {
  const served = new Map<string, string[]>();
  for (const r of app.routes) {
    if (r.method === "ALL") continue; // middleware
    const methods = served.get(r.path) ?? [];
    if (!methods.includes(r.method)) methods.push(r.method);
    served.set(r.path, methods);
  }
  const allowOf = (methods: string[]) =>
    methods
      .slice()
      .sort((a, b) => METHOD_ORDER.indexOf(a) - METHOD_ORDER.indexOf(b))
      .join(", ");
  for (const [path, methods] of served) {
    const allow = allowOf(methods);
    // A path that a pattern with the same methods covers (one schema under /v2/schemas/:name)
    // is answered by that pattern's, and counted under it in the metrics.
    const covered = [...served].some(([p, m]) => p !== path && covers(p, path) && allowOf(m) === allow);
    if (covered) continue;
    app.all(path, (c, next) => {
      if (methods.includes(c.req.method)) return next();
      throw new HttpError(405, `The method ${c.req.method} is not allowed for this resource. `, {
        Allow: allow,
      });
    });
  }
}
