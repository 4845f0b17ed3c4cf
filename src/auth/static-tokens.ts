/**
 * `tokens` mode: a file mapping bearer tokens to a project, a user and roles, for small
 * deployments and tests without Keystone. Clients send the token as X-Auth-Token, as to Glance.
 *
 *   {"tokens": {"<token>": {"project": "p1", "user": "alice", "roles": ["member"]}}}
 */
import { readFileSync } from "node:fs";
import { type Authenticator, type AuthRequest, tokenDigest } from "./authenticator.js";
import { makeContext, type RequestContext, UnauthorizedError } from "./context.js";

export interface TokenEntry {
  project: string;
  user: string;
  roles: string[];
}

export class StaticTokens implements Authenticator {
  readonly mode = "tokens";
  private readonly byDigest = new Map<string, RequestContext>();

  constructor(entries: Record<string, TokenEntry>) {
    for (const [token, e] of Object.entries(entries)) {
      this.byDigest.set(tokenDigest(token), makeContext(e.project, e.user, e.roles));
    }
  }

  /** Loads and checks a tokens file; a malformed one is refused at start, naming the entry. */
  static fromFile(path: string): StaticTokens {
    const doc = JSON.parse(readFileSync(path, "utf8")) as { tokens?: unknown };
    const tokens = doc.tokens;
    if (typeof tokens !== "object" || tokens === null || Array.isArray(tokens)) {
      throw new Error(`${path}: expected {"tokens": {"<token>": {"project", "user", "roles"}}}`);
    }
    for (const [token, e] of Object.entries(tokens as Record<string, Partial<TokenEntry>>)) {
      const ok =
        token.length >= 8 &&
        typeof e?.project === "string" &&
        e.project.length > 0 &&
        typeof e.user === "string" &&
        Array.isArray(e.roles) &&
        e.roles.every((r) => typeof r === "string");
      if (!ok) {
        throw new Error(
          `${path}: token ${token.slice(0, 4)}…: needs project and user (strings), roles (strings), and at least 8 characters`,
        );
      }
    }
    return new StaticTokens(tokens as Record<string, TokenEntry>);
  }

  authenticate(req: AuthRequest): RequestContext {
    const token = req.header("x-auth-token");
    const ctx = token ? this.byDigest.get(tokenDigest(token)) : undefined;
    if (!ctx) throw new UnauthorizedError();
    return ctx;
  }
}
