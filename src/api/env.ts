/** The Hono environment every route sees: the Node bindings, the request id and the caller. */
import type { HttpBindings } from "@hono/node-server";
import type { Context } from "hono";
import type { RequestContext } from "../auth/context.js";
import { notAuthorized } from "./access.js";

export type Env = {
  Bindings: HttpBindings;
  Variables: {
    requestId: string;
    auth: RequestContext;
    /** The client's address: the peer, or from a trusted proxy its X-Forwarded-For (request-origin.ts). */
    client: string | undefined;
    /** The base of absolute links: the public endpoint, or the URL the client addressed. */
    baseUrl: string;
  };
};

/** Refuses callers without the admin role (Tessera's own operations, metrics, store details). */
export function requireAdmin(c: Context<Env>, action: string): void {
  if (!c.get("auth").isAdmin) throw notAuthorized(action);
}
