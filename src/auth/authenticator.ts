/**
 * Authentication modes: each turns a request's credentials into a RequestContext or refuses
 * with UnauthorizedError. The API calls one for every request but version discovery.
 */
import { createHash } from "node:crypto";
import { makeContext, type RequestContext } from "./context.js";

/** What an authenticator may look at: headers, and the peer's address. */
export interface AuthRequest {
  header(name: string): string | undefined;
  remoteAddress: string | undefined;
}

export interface Authenticator {
  readonly mode: "none" | "tokens" | "trusted-headers" | "keystone";
  authenticate(req: AuthRequest): RequestContext | Promise<RequestContext>;
  /** Where a client gets a token (the WWW-Authenticate header of a 401), if anywhere. */
  readonly realm?: string;
  close?(): void;
}

/**
 * The embedded default, as Glance's noauth pipeline: every request is one local admin with no
 * project. Anyone who can reach the port can do anything: for one user on one machine only.
 */
export class NoAuth implements Authenticator {
  readonly mode = "none";
  private readonly ctx = makeContext(null, null, ["admin"]);
  authenticate(): RequestContext {
    return this.ctx;
  }
}

/** Tokens are compared by digest, so a lookup's timing says nothing about a token's bytes. */
export function tokenDigest(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
