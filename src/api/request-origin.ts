/**
 * Where a request came from and which URL it addressed, behind proxies or not: the client's
 * address (for the request log and for the metrics scrapers' check) and the base of every
 * absolute link Tessera writes (the version documents, Location headers, the /v2 redirect).
 *
 * Glance's rules: `public_endpoint`, when set, is the base of every link, whatever the request
 * says; otherwise the request's own scheme and Host. X-Forwarded-Proto, X-Forwarded-Host and
 * X-Forwarded-For are believed only from the configured proxies (`proxyHeadersFrom`): anyone
 * can send them, and a link built from a client's own header would point other clients, or a
 * scraper's allowance, wherever that client likes.
 */
import type { BlockList } from "node:net";
import { isIP } from "node:net";
import type { Context, MiddlewareHandler } from "hono";
import { addressList, listed } from "../auth/trusted-headers.js";
import type { Env } from "./env.js";

export interface OriginOptions {
  /** Glance's public_endpoint: an absolute http(s) URL, without a trailing slash. */
  publicEndpoint?: string;
  /** Addresses and CIDR ranges of the proxies whose X-Forwarded-* headers are believed. */
  proxyHeadersFrom?: string[];
}

/** A host[:port] fit for a URL: names, IPv4, bracketed IPv6; nothing that could end a header. */
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** The first value of a header a chain of proxies may have made a list of. */
function first(value: string | undefined): string | undefined {
  const v = value?.split(",")[0]?.trim();
  return v === "" ? undefined : v;
}

/**
 * The client in X-Forwarded-For: each proxy appends the address it got the request from, so
 * the nearest entry that is not one of our proxies is the client; what lies left of it, the
 * client could have written itself.
 */
function forwardedClient(header: string | undefined, proxies: BlockList): string | undefined {
  const hops = (header ?? "").split(",").map((h) => h.trim());
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as string;
    if (isIP(hop) === 0) return undefined;
    if (!listed(proxies, hop) || i === 0) return hop;
  }
  return undefined;
}

/** Sets `client` and `baseUrl` on every request (the first middleware after the log's). */
export function requestOrigin(o: OriginOptions): MiddlewareHandler<Env> {
  const proxies = addressList(o.proxyHeadersFrom ?? []);
  return async (c, next) => {
    const socket = c.env?.incoming?.socket as { remoteAddress?: string; encrypted?: boolean } | undefined;
    const peer = socket?.remoteAddress;
    const trusted = listed(proxies, peer);
    const header = (name: string) => (trusted ? first(c.req.header(name)) : undefined);
    c.set(
      "client",
      (trusted ? forwardedClient(c.req.header("x-forwarded-for"), proxies) : undefined) ?? peer,
    );
    if (o.publicEndpoint !== undefined) {
      c.set("baseUrl", o.publicEndpoint);
    } else {
      const fwdProto = header("x-forwarded-proto")?.toLowerCase();
      const proto =
        fwdProto === "http" || fwdProto === "https" ? fwdProto : socket?.encrypted ? "https" : "http";
      const fwdHost = header("x-forwarded-host");
      const host = fwdHost && HOST.test(fwdHost) ? fwdHost : (c.req.header("host") ?? "127.0.0.1:9292");
      c.set("baseUrl", `${proto}://${host}`);
    }
    await next();
  };
}

/** The base of this server's absolute links for this request (requestOrigin decided it). */
export function baseUrl(c: Context<Env>): string {
  return c.get("baseUrl");
}
