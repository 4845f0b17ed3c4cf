/**
 * web-download's source: an image's bytes fetched from a URI, streamed as they arrive, with the
 * protections a server that fetches URLs for its clients needs against server-side request
 * forgery:
 *
 * - Glance's import_filtering_opts: allow or deny lists of schemes, hosts and ports (an allow
 *   list, when set, wins over its deny list), checked on the URI and again on every redirect.
 * - Hosts written as encoded addresses (2130706433, 0x7f.1, 127.1) are refused, as Glance's
 *   normalize_hostname does: WHATWG parsing would quietly turn them into 127.0.0.1.
 * - By default no loopback, private, link-local, shared, documentation, multicast or reserved
 *   address: literal addresses are checked on the URI, names once resolved, in the DNS lookup
 *   the connection itself uses (so a name cannot resolve to a public address for the check and a
 *   private one for the connection). A host the operator lists in `allowedHosts` is exempt.
 * - Bounded: redirects (`maxRedirects`), silence (`idleTimeoutMs` without a byte), and size
 *   (the ingest's own limit).
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import http from "node:http";
import https from "node:https";
import { BlockList, isIP } from "node:net";
import { TesseraError } from "../errors.js";

export interface ImportFilter {
  allowedSchemes: string[];
  disallowedSchemes: string[];
  allowedHosts: string[];
  disallowedHosts: string[];
  allowedPorts: number[];
  disallowedPorts: number[];
}

/** Glance's defaults for import_filtering_opts. */
export const DEFAULT_IMPORT_FILTER: ImportFilter = {
  allowedSchemes: ["http", "https"],
  disallowedSchemes: [],
  allowedHosts: [],
  disallowedHosts: [],
  allowedPorts: [80, 443],
  disallowedPorts: [],
};

/** A URI refused by the filter (400 at import time, in Glance's words). */
export class UriFilteredError extends TesseraError {
  constructor(uri: string) {
    super("bad_request", `URI for web-download does not pass filtering: ${uri}`);
  }
}

/** A download that failed once under way: the import task fails with this message. */
export class WebDownloadError extends TesseraError {
  constructor(message: string) {
    super("web_download_failed", message);
  }
}

/**
 * Addresses a web-download may not reach unless its host is explicitly allowed: one list per
 * family, since a BlockList matches IPv4 addresses against IPv4-mapped IPv6 rules too.
 */
const NOT_PUBLIC_V4 = new BlockList();
const NOT_PUBLIC_V6 = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8], // "this network"; 0.0.0.0 reaches the local host
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // shared address space (carrier-grade NAT)
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, where cloud metadata services live
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4], // reserved, and 255.255.255.255
] as const) {
  NOT_PUBLIC_V4.addSubnet(net, bits, "ipv4");
}
for (const [net, bits] of [
  ["::", 128],
  ["::1", 128],
  ["::ffff:0:0", 96], // IPv4-mapped: would carry any IPv4 address past the IPv4 rules
  ["64:ff9b::", 96], // NAT64, likewise
  ["64:ff9b:1::", 48],
  ["100::", 64],
  ["2001:db8::", 32],
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["fec0::", 10],
  ["ff00::", 8],
] as const) {
  NOT_PUBLIC_V6.addSubnet(net, bits, "ipv6");
}

/** Whether an IP address is public (reachable by web-download without an explicit allowance). */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return family === 4 ? !NOT_PUBLIC_V4.check(address, "ipv4") : !NOT_PUBLIC_V6.check(address, "ipv6");
}

/** The host as written in the URI (WHATWG's URL normalizes encoded addresses away). */
function rawHost(uri: string): string | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)/i.exec(uri);
  return m?.[1]?.toLowerCase().replace(/\.$/, "");
}

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443 };

function listed(list: string[], host: string): boolean {
  return list.some((h) => h.toLowerCase().replace(/^\[|\]$/g, "") === host);
}

/**
 * Checks a URI against the filter (Glance's validate_import_uri) and Tessera's address rules for
 * literal addresses. Returns the parsed URL and whether its host was explicitly allowed.
 */
export function checkUri(uri: string, filter: ImportFilter): { url: URL; host: string; explicit: boolean } {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new UriFilteredError(uri);
  }
  const scheme = url.protocol.replace(/:$/, "");
  const refuse = () => new UriFilteredError(uri);
  const disallowedSchemes = filter.allowedSchemes.length > 0 ? [] : filter.disallowedSchemes;
  if (filter.allowedSchemes.length > 0 && !filter.allowedSchemes.includes(scheme)) throw refuse();
  if (disallowedSchemes.includes(scheme)) throw refuse();
  // Only what can be fetched here, whatever the filter says.
  if (scheme !== "http" && scheme !== "https") throw refuse();

  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, "");
  const written = rawHost(uri)?.replace(/^\[|\]$/g, "");
  if (!host || written === undefined) throw refuse();
  // An address must be written as the address it is: no decimal, hex, octal or short forms.
  if (isIP(host) === 4 && written !== host) throw refuse();
  if (isIP(host) === 0 && /^[\d.]+$/.test(host)) throw refuse();
  const disallowedHosts = filter.allowedHosts.length > 0 ? [] : filter.disallowedHosts;
  const explicit = listed(filter.allowedHosts, host);
  if (filter.allowedHosts.length > 0 && !explicit) throw refuse();
  if (listed(disallowedHosts, host)) throw refuse();

  const port = url.port === "" ? (DEFAULT_PORTS[scheme] as number) : Number(url.port);
  const disallowedPorts = filter.allowedPorts.length > 0 ? [] : filter.disallowedPorts;
  if (filter.allowedPorts.length > 0 && !filter.allowedPorts.includes(port)) throw refuse();
  if (disallowedPorts.includes(port)) throw refuse();

  if (isIP(host) !== 0 && !explicit && !isPublicAddress(host)) throw refuse();
  return { url, host, explicit };
}

export type Resolver = (host: string) => Promise<LookupAddress[]>;

const systemResolver: Resolver = (host) =>
  new Promise((resolve, reject) => {
    dnsLookup(host, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses)));
  });

type LookupCallback = (err: Error | null, address: string | LookupAddress[], family?: number) => void;

/**
 * The DNS lookup a web-download's connection uses: it resolves the name, refuses it if any
 * address is not public (unless the host is explicitly allowed), and hands the connection
 * exactly the addresses it checked.
 */
export function guardedLookup(explicit: boolean, resolver: Resolver = systemResolver) {
  return (host: string, options: { all?: boolean }, callback: LookupCallback): void => {
    resolver(host).then(
      (addresses) => {
        if (addresses.length === 0) return callback(new WebDownloadError(`${host} does not resolve`), []);
        const bad = addresses.find((a) => !isPublicAddress(a.address));
        if (bad && !explicit) {
          return callback(
            new WebDownloadError(`${host} resolves to ${bad.address}, which is not a public address`),
            [],
          );
        }
        if (options.all) return callback(null, addresses);
        const first = addresses[0] as LookupAddress;
        callback(null, first.address, first.family);
      },
      (err: Error) => callback(new WebDownloadError(`${host} does not resolve: ${err.message}`), []),
    );
  };
}

export interface WebSourceOptions {
  filter: ImportFilter;
  /** Longest silence (connecting, waiting for headers, between bytes). */
  idleTimeoutMs: number;
  maxRedirects: number;
  /** The DNS step (tests replace it so that nothing is ever resolved or reached). */
  resolver?: Resolver;
  signal?: AbortSignal;
}

/** GETs `url` once: the response, or the error that stopped it. */
function get(
  url: URL,
  explicit: boolean,
  opts: WebSourceOptions,
): Promise<{ res: http.IncomingMessage; req: http.ClientRequest; stopped: () => Error | undefined }> {
  return new Promise((resolve, reject) => {
    // Why this side cut the transfer off, if it did: the error the body's reader should report.
    let stopped: Error | undefined;
    const lib = url.protocol === "https:" ? https : http;
    const req = lib.get(url, {
      agent: false,
      lookup: guardedLookup(explicit, opts.resolver) as never,
      headers: { "User-Agent": "tessera-web-download", Accept: "*/*" },
      signal: opts.signal,
    });
    req.setTimeout(opts.idleTimeoutMs, () => {
      stopped = new WebDownloadError(`no data from ${url.host} for ${opts.idleTimeoutMs / 1000} s`);
      req.destroy(stopped);
    });
    req.once("response", (res) => resolve({ res, req, stopped: () => stopped }));
    req.once("error", (e) =>
      reject(e instanceof TesseraError ? e : new WebDownloadError(`${url.host}: ${(e as Error).message}`)),
    );
  });
}

/**
 * The bytes at `uri`, streamed, after following at most `maxRedirects` redirects, each target
 * checked like the first.
 */
export async function* webSource(uri: string, opts: WebSourceOptions): AsyncGenerator<Buffer> {
  let target = uri;
  for (let hop = 0; ; hop++) {
    const { url, explicit } = checkUri(target, opts.filter);
    const { res, req, stopped } = await get(url, explicit, opts);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      req.destroy();
      if (hop >= opts.maxRedirects) throw new WebDownloadError(`more than ${opts.maxRedirects} redirects`);
      const next = new URL(res.headers.location, url).toString();
      try {
        checkUri(next, opts.filter);
      } catch {
        throw new WebDownloadError(`redirected to ${next}, which does not pass filtering`);
      }
      target = next;
      continue;
    }
    if (status !== 200) {
      res.resume();
      req.destroy();
      throw new WebDownloadError(`${url.host} answered ${status} for ${url.pathname}`);
    }
    try {
      for await (const piece of res) yield piece as Buffer;
      if (!res.complete) throw new WebDownloadError(`${url.host} closed the connection early`);
    } catch (e) {
      const why = stopped() ?? e;
      throw why instanceof TesseraError
        ? why
        : new WebDownloadError(`${url.host}: ${(why as Error).message}`);
    } finally {
      req.destroy();
    }
    return;
  }
}
