/**
 * Behind a proxy: the links Tessera writes (version documents, Location headers, the /v2
 * redirect) and the client address it logs, over real HTTP. X-Forwarded-* count only from the
 * configured proxies (a second loopback address, 127.0.0.2, plays the proxy); the public
 * endpoint wins over them, as Glance's public_endpoint does.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { type ServerOptions, startServer } from "../../src/api/server.js";
import { DEFAULT_CONFIG } from "../../src/config/server-config.js";
import { type Answer, call, type LogLine } from "../helpers/cluster-server.js";
import { waitFor } from "../helpers/wait.js";

const PROXY = "127.0.0.2";
const FORWARDED = {
  "x-forwarded-proto": "https",
  "x-forwarded-host": "images.example.com",
  // What the client wrote itself, then what the proxy appended: the address it came from.
  "x-forwarded-for": "198.51.100.66, 203.0.113.9",
};

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

async function server(overrides: Partial<ServerOptions>) {
  const dataDir = await mkdtemp(join(tmpdir(), "tessera-origin-"));
  const logs: LogLine[] = [];
  const logger = pino({ level: "info" }, { write: (l: string) => logs.push(JSON.parse(l)) });
  const s = await startServer(
    { ...DEFAULT_CONFIG, dataDir, port: 0, fsync: false, osHashNodeName: "sha512", ...overrides },
    logger,
  );
  stops.push(async () => {
    await s.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  return { url: s.url, logs };
}

/** Every absolute link the API writes, asked from `localAddress` with `headers`. */
async function links(url: string, localAddress: string, headers: Record<string, string>) {
  const ask = (path: string, method = "GET", body?: unknown): Promise<Answer> =>
    call(`${url}${path}`, {
      method,
      localAddress,
      headers: { ...headers, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? Buffer.from(JSON.stringify(body)) : undefined,
    });
  const hrefs = async (a: Answer) =>
    (JSON.parse(a.body.toString()) as { versions: { links: { href: string }[] }[] }).versions.flatMap((v) =>
      v.links.map((l) => l.href),
    );
  const root = await ask("/");
  expect(root.status).toBe(300);
  const versions = await ask("/versions");
  const redirect = await ask("/v2");
  expect(redirect.status).toBe(302);
  const image = await ask("/v2/images", "POST", { name: "x", disk_format: "raw", container_format: "bare" });
  expect(image.status).toBe(201);
  const ns = await ask("/v2/metadefs/namespaces", "POST", { namespace: `ns-${Date.now()}-${Math.random()}` });
  expect(ns.status).toBe(201);
  return {
    versions: [...new Set([...(await hrefs(root)), ...(await hrefs(versions))])],
    redirect: String(redirect.headers.location),
    image: String(image.headers.location),
    namespace: String(ns.headers.location),
  };
}

describe("links and client addresses behind a proxy", () => {
  it("follow X-Forwarded-Proto and -Host from a trusted proxy, and log the client it forwards", async () => {
    const s = await server({ proxyHeadersFrom: [PROXY] });
    const got = await links(s.url, PROXY, FORWARDED);
    expect(got.versions).toEqual(["https://images.example.com/v2/"]);
    expect(got.redirect).toBe("https://images.example.com/v2/");
    expect(got.image).toMatch(/^https:\/\/images\.example\.com\/v2\/images\/[0-9a-f-]{36}$/);
    expect(got.namespace).toMatch(/^https:\/\/images\.example\.com\/v2\/metadefs\/namespaces\/ns-/);
    // The nearest address the proxy did not write itself: never the one the client made up.
    const requests = await waitFor("the request lines", () => {
      const r = s.logs.filter((l) => l.path !== undefined);
      return r.length >= 5 && r;
    });
    for (const r of requests) expect(r.remote).toBe("203.0.113.9");
  });

  it("ignore X-Forwarded-* from anyone else: links to the Host asked, the peer logged", async () => {
    const s = await server({ proxyHeadersFrom: [PROXY] });
    const host = new URL(s.url).host;
    const got = await links(s.url, "127.0.0.1", FORWARDED);
    expect(got.versions).toEqual([`http://${host}/v2/`]);
    expect(got.redirect).toBe(`http://${host}/v2/`);
    expect(got.image.startsWith(`http://${host}/v2/images/`)).toBe(true);
    expect(got.namespace.startsWith(`http://${host}/v2/metadefs/namespaces/`)).toBe(true);
    const requests = await waitFor("the request lines", () => {
      const r = s.logs.filter((l) => l.path !== undefined);
      return r.length >= 5 && r;
    });
    for (const r of requests) expect(r.remote).toBe("127.0.0.1");
  });

  it("use the public endpoint, path and all, over forwarded headers and Host", async () => {
    const s = await server({ publicEndpoint: "https://cloud.example.org/image", proxyHeadersFrom: [PROXY] });
    for (const from of [PROXY, "127.0.0.1"]) {
      const got = await links(s.url, from, FORWARDED);
      expect(got.versions).toEqual(["https://cloud.example.org/image/v2/"]);
      expect(got.redirect).toBe("https://cloud.example.org/image/v2/");
      expect(got.image.startsWith("https://cloud.example.org/image/v2/images/")).toBe(true);
      expect(got.namespace.startsWith("https://cloud.example.org/image/v2/metadefs/namespaces/")).toBe(true);
    }
  });
});
