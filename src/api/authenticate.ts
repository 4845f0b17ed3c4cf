/**
 * The auth middleware: every request but version discovery is authenticated before routing,
 * as keystonemiddleware sits in front of Glance; the identity is left in the context as `auth`.
 * A local admin token (written by the server into its data directory, readable only by the
 * operator) lets `tessera gc` and other local tools reach the admin routes in any mode.
 */
import type { MiddlewareHandler } from "hono";
import type { Authenticator, AuthRequest } from "../auth/authenticator.js";
import { tokenDigest } from "../auth/authenticator.js";
import { makeContext, UnauthorizedError } from "../auth/context.js";
import type { Env } from "./env.js";
import { HttpError } from "./errors.js";

/** Paths any client may read without credentials: version discovery. */
const OPEN_PATHS = new Set(["/", "/versions", "/v2", "/v2/"]);

export function authenticate(auth: Authenticator, localToken?: string): MiddlewareHandler<Env> {
  const local = localToken === undefined ? undefined : tokenDigest(localToken);
  const localAdmin = makeContext(null, "tessera-local", ["admin"]);
  return async (c, next) => {
    if (OPEN_PATHS.has(c.req.path) && (c.req.method === "GET" || c.req.method === "HEAD")) {
      return next();
    }
    const token = c.req.header("x-auth-token");
    if (local !== undefined && token !== undefined && tokenDigest(token) === local) {
      c.set("auth", localAdmin);
      return next();
    }
    const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
    const req: AuthRequest = {
      header: (name) => c.req.header(name),
      remoteAddress: env?.incoming?.socket?.remoteAddress,
    };
    try {
      c.set("auth", await auth.authenticate(req));
    } catch (e) {
      if (e instanceof UnauthorizedError) {
        throw new HttpError(401, e.message, auth.realm ? { "WWW-Authenticate": auth.realm } : {});
      }
      throw e;
    }
    return next();
  };
}
