/**
 * `trusted-headers` mode: behind a proxy that has already authenticated the caller (e.g.
 * keystonemiddleware in front of Tessera), the identity comes in the headers it sets, as Glance
 * receives them: X-Identity-Status, X-Project-Id, X-User-Id, X-Roles. Anyone could send those
 * headers, so they are believed only from the configured proxy addresses; from anywhere else
 * the request is unauthenticated.
 */
import { BlockList, isIPv4, isIPv6 } from "node:net";
import type { Authenticator, AuthRequest } from "./authenticator.js";
import { makeContext, type RequestContext, UnauthorizedError } from "./context.js";

/** An IPv4 peer reached over a dual-stack socket reports itself as ::ffff:a.b.c.d. */
function plainAddress(addr: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  return m ? (m[1] as string) : addr;
}

/** Addresses and CIDR ranges ("10.0.0.0/8", "::1") as a BlockList; a bad entry throws. */
export function addressList(entries: string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [addr, bits] = entry.split("/") as [string, string | undefined];
    const family = isIPv4(addr) ? "ipv4" : isIPv6(addr) ? "ipv6" : undefined;
    if (!family) throw new Error(`not an IP address or CIDR range: ${JSON.stringify(entry)}`);
    if (bits === undefined) {
      list.addAddress(addr, family);
      continue;
    }
    const prefix = Number(bits);
    const max = family === "ipv4" ? 32 : 128;
    if (!/^\d+$/.test(bits) || prefix > max) throw new Error(`bad prefix length in ${JSON.stringify(entry)}`);
    list.addSubnet(addr, prefix, family);
  }
  return list;
}

/** Whether `remoteAddress` (a socket's peer, as Node reports it) is in `list`. */
export function listed(list: BlockList, remoteAddress: string | undefined): boolean {
  if (!remoteAddress) return false;
  const addr = plainAddress(remoteAddress);
  return list.check(addr, isIPv4(addr) ? "ipv4" : "ipv6");
}

export class TrustedHeaders implements Authenticator {
  readonly mode = "trusted-headers";
  private readonly proxies: BlockList;

  constructor(trustedProxies: string[]) {
    if (trustedProxies.length === 0) throw new Error("auth.trustedProxies must list the proxy addresses");
    this.proxies = addressList(trustedProxies);
  }

  fromTrustedProxy(remoteAddress: string | undefined): boolean {
    return listed(this.proxies, remoteAddress);
  }

  authenticate(req: AuthRequest): RequestContext {
    if (!this.fromTrustedProxy(req.remoteAddress)) throw new UnauthorizedError();
    if (req.header("x-identity-status")?.toLowerCase() !== "confirmed") throw new UnauthorizedError();
    const roles = (req.header("x-roles") ?? "").split(",");
    return makeContext(req.header("x-project-id") ?? null, req.header("x-user-id") ?? null, roles);
  }
}
