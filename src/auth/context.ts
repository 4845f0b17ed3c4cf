/**
 * Who is asking: the identity every request carries once authenticated, whichever auth mode
 * established it. Policies (policy.ts) decide from this alone.
 */
import { TesseraError } from "../errors.js";

export interface RequestContext {
  /** The caller's project (Glance's owner for what it creates); null for an unscoped caller. */
  projectId: string | null;
  userId: string | null;
  /** Role names, lower-case, with Keystone's default implications applied (impliedRoles). */
  roles: ReadonlySet<string>;
  /** Glance's context_is_admin: the admin role. */
  isAdmin: boolean;
}

/**
 * Keystone's default role implications (keystone-manage bootstrap creates them): admin implies
 * member, member implies reader. Keystone expands them in the tokens it validates; the static
 * tokens and proxy headers modes expand them here, so a policy sees the same roles either way.
 */
const IMPLIES: Record<string, string[]> = { admin: ["member", "reader"], member: ["reader"] };

export function impliedRoles(names: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const raw of names) {
    const name = raw.trim().toLowerCase();
    if (!name) continue;
    out.add(name);
    for (const also of IMPLIES[name] ?? []) out.add(also);
  }
  return out;
}

export function makeContext(
  projectId: string | null,
  userId: string | null,
  roles: Iterable<string>,
): RequestContext {
  const set = impliedRoles(roles);
  return { projectId: projectId || null, userId: userId || null, roles: set, isAdmin: set.has("admin") };
}

/** No credentials, or credentials that do not authenticate: 401 (the same answer for both). */
export class UnauthorizedError extends TesseraError {
  constructor(message = "The request you have made requires authentication.") {
    super("unauthorized", message);
  }
}

/** The identity provider could not answer (Keystone down): 503, never a guess either way. */
export class AuthUnavailableError extends TesseraError {
  constructor(message: string, cause?: unknown) {
    super("auth_unavailable", message, { cause });
  }
}
