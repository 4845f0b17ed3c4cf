/**
 * Glance's default metadefs policies (Zed, new defaults): admins see and may do everything;
 * any other caller sees public namespaces and its own project's, and with the reader role may
 * read them; every write (namespaces, objects, properties, tags, associations) is the admin's.
 * As for images, a namespace the caller cannot see does not exist for it (404), and a refused
 * action on one it sees is 403.
 */
import type { RequestContext } from "./context.js";

export interface NamespaceFacts {
  owner: string | null;
  visibility: "public" | "private";
}

/** Glance's metadef namespace filter: admin, public, or owned by the caller's project. */
export function namespaceVisible(ctx: RequestContext, ns: NamespaceFacts): boolean {
  if (ctx.isAdmin || ns.visibility === "public") return true;
  return ctx.projectId !== null && ns.owner === ctx.projectId;
}

/** Reads (get_*, list_*) need the reader role; everything else the admin's. */
export function metadefAllowed(ctx: RequestContext, action: string): boolean {
  if (ctx.isAdmin) return true;
  const read = action.startsWith("get_") || action.startsWith("list_");
  return read && ctx.roles.has("reader");
}
