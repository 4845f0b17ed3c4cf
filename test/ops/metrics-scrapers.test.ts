/**
 * Prometheus on a node whose API needs credentials: the configured scrapers' addresses read
 * GET /metrics without a token, and nothing else; every other caller still needs an admin's.
 * Over real HTTP from two loopback addresses (127.0.0.2 is the scraper): with static tokens, on
 * one process and on a primary with two workers (whose answer is the node's), and with a real
 * Keystone (its tokens: a member's refused, an admin's taken).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerConfig } from "../../src/config/server-config.js";
import { call, startCluster } from "../helpers/cluster-server.js";
import { KEYSTONE_MISSING, type Keystone, PEOPLE, serviceAuth, startKeystone } from "../helpers/keystone.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const SCRAPER = "127.0.0.2";
const PROXY = "127.0.0.3";
const ADMIN = "admin-token-0123";
const MEMBER = "member-token-0123";

let dir: string;
let auth: ServerConfig["auth"];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tessera-scrapers-"));
  const tokensFile = join(dir, "tokens.json");
  await writeFile(
    tokensFile,
    JSON.stringify({
      tokens: {
        [ADMIN]: { project: "p-admin", user: "root", roles: ["admin"] },
        [MEMBER]: { project: "p-one", user: "alice", roles: ["member"] },
      },
    }),
  );
  auth = { mode: "tokens", tokensFile };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const metricsFrom = (url: string, localAddress: string, headers: Record<string, string> = {}) =>
  call(`${url}/metrics`, { localAddress, headers });

describe("GET /metrics for Prometheus under authentication", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ auth, metricsScrapers: [SCRAPER], proxyHeadersFrom: [PROXY] });
  });
  afterAll(async () => {
    await s.close();
    await rm(s.dataDir, { recursive: true, force: true });
  });

  it("answers a scraper's address without a token, and only the metrics", async () => {
    const got = await metricsFrom(s.url, SCRAPER);
    expect(got.status).toBe(200);
    expect(got.body.toString()).toContain("tessera_http_requests_total");
    expect((await call(`${s.url}/v2/images`, { localAddress: SCRAPER })).status).toBe(401);
  });

  it("still wants an admin from any other address: 401 without a token, 403 for a member", async () => {
    expect((await metricsFrom(s.url, "127.0.0.1")).status).toBe(401);
    expect((await metricsFrom(s.url, "127.0.0.1", { "x-auth-token": MEMBER })).status).toBe(403);
    expect((await metricsFrom(s.url, "127.0.0.1", { "x-auth-token": ADMIN })).status).toBe(200);
  });

  it("believes a forwarded scraper address from a trusted proxy only", async () => {
    const forwarded = { "x-forwarded-for": SCRAPER };
    expect((await metricsFrom(s.url, PROXY, forwarded)).status).toBe(200);
    expect((await metricsFrom(s.url, "127.0.0.1", forwarded)).status).toBe(401);
  });

  it("answers for the whole node from a primary's workers", async () => {
    const config = join(dir, "cluster.json");
    await writeFile(config, JSON.stringify({ auth, metricsScrapers: [SCRAPER], fsync: false }));
    const node = await startCluster(join(dir, "cluster-data"), 2, { args: ["--config", config] });
    try {
      for (let i = 0; i < 4; i++) {
        const got = await metricsFrom(node.url, SCRAPER);
        expect(got.status).toBe(200);
        // The primary's store figures: the node's answer, not one worker's registry.
        expect(got.body.toString()).toContain('tessera_store_objects{store="local"}');
        expect((await metricsFrom(node.url, "127.0.0.1")).status).toBe(401);
      }
    } finally {
      node.child.kill("SIGTERM");
      await node.exited;
    }
  });
});

describe.skipIf(KEYSTONE_MISSING)("GET /metrics for Prometheus under Keystone", () => {
  let ks: Keystone;
  let s: TestServer;
  beforeAll(async () => {
    ks = await startKeystone();
    s = await startTestServer({ auth: serviceAuth(ks), metricsScrapers: [SCRAPER] });
  }, 180_000);
  afterAll(async () => {
    await s?.close();
    if (s) await rm(s.dataDir, { recursive: true, force: true });
    await ks?.stop();
  });

  it("answers the scraper without a token; others need a Keystone admin's", async () => {
    expect((await metricsFrom(s.url, SCRAPER)).status).toBe(200);
    const none = await metricsFrom(s.url, "127.0.0.1");
    expect(none.status).toBe(401);
    expect(none.headers["www-authenticate"]).toMatch(/^Keystone uri=/);
    const member = (await ks.token(PEOPLE.demo)).token;
    expect((await metricsFrom(s.url, "127.0.0.1", { "x-auth-token": member })).status).toBe(403);
    const admin = (await ks.token(PEOPLE.admin)).token;
    expect((await metricsFrom(s.url, "127.0.0.1", { "x-auth-token": admin })).status).toBe(200);
  });
});
