/**
 * The authentication modes other than Keystone's (test/auth/keystone.test.ts): static tokens,
 * trusted proxy headers (believed only from the configured addresses), none; the admin-only
 * routes; the local admin token that lets `tessera gc` reach a server in any mode; and the
 * configuration's checks.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { StaticTokens } from "../../src/auth/static-tokens.js";
import { TrustedHeaders } from "../../src/auth/trusted-headers.js";
import { loadConfig } from "../../src/config/load.js";
import { ConfigError } from "../../src/config/server-config.js";
import { runAsync } from "../helpers/run.js";
import { sharedServer, startTestServer, type TestServer } from "../helpers/server.js";

const BIN = new URL("../../dist/src/cli/main.js", import.meta.url).pathname;

let dir = "";
let tokensFile = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tessera-auth-"));
  tokensFile = join(dir, "tokens.json");
  await writeFile(
    tokensFile,
    JSON.stringify({
      tokens: {
        "alice-token-1": { project: "alpha", user: "alice", roles: ["member"] },
        "root-token-1": { project: "ops", user: "root", roles: ["Admin"] },
      },
    }),
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const json = { Accept: "application/json" };

describe("tokens mode", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ auth: { mode: "tokens", tokensFile }, gcIntervalSeconds: 0 });
  });
  afterAll(async () => {
    await s.close();
    await rm(s.dataDir, { recursive: true, force: true });
  });

  test("a listed token acts as its project; a missing or unknown one is 401 with Glance's error shape", async () => {
    const made = await fetch(`${s.url}/v2/images`, {
      method: "POST",
      headers: { "X-Auth-Token": "alice-token-1", "Content-Type": "application/json" },
      body: JSON.stringify({ name: "a" }),
    });
    expect(made.status).toBe(201);
    expect(((await made.json()) as { owner: string }).owner).toBe("alpha");
    for (const headers of [json, { ...json, "X-Auth-Token": "alice-token-2" }]) {
      const res = await fetch(`${s.url}/v2/images`, { headers });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({
        message: "The request you have made requires authentication.",
        code: "401 Unauthorized",
        title: "Unauthorized",
      });
    }
  });

  test("admin-only routes refuse a member with 403 and serve an admin (roles match in any case)", async () => {
    for (const path of ["/tessera/v1/stats", "/metrics", "/v2/info/stores/detail"]) {
      const member = await fetch(`${s.url}${path}`, {
        headers: { ...json, "X-Auth-Token": "alice-token-1" },
      });
      expect(member.status, path).toBe(403);
      const admin = await fetch(`${s.url}${path}`, { headers: { "X-Auth-Token": "root-token-1" } });
      expect(admin.status, path).toBe(200);
    }
  });

  test("the server's local admin token is in its data directory, readable by its owner only; tessera gc uses it to ask the running server", async () => {
    const file = join(s.dataDir, "tessera.token");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const token = (await readFile(file, "utf8")).trim();
    const res = await fetch(`${s.url}/tessera/v1/stats`, { headers: { "X-Auth-Token": token } });
    expect(res.status).toBe(200);
    const r = await runAsync(process.execPath, [BIN, "gc", "--data", s.dataDir, "--grace", "0"]);
    expect(r.status, r.err).toBe(0);
    expect(JSON.parse(r.out).stores).toBeDefined();
  });

  test("a malformed tokens file is refused at start, naming the problem", async () => {
    const bad = join(dir, "bad.json");
    await writeFile(bad, JSON.stringify({ tokens: { short: { project: "p", user: "u", roles: [] } } }));
    expect(() => StaticTokens.fromFile(bad)).toThrow(/at least 8 characters/);
    await writeFile(bad, JSON.stringify({ tokens: { "long-enough": { project: "p", roles: "member" } } }));
    expect(() => StaticTokens.fromFile(bad)).toThrow(/needs project and user/);
  });
});

describe("trusted-headers mode", () => {
  const trusted = sharedServer({ auth: { mode: "trusted-headers", trustedProxies: ["127.0.0.0/8", "::1"] } });
  const elsewhere = sharedServer({ auth: { mode: "trusted-headers", trustedProxies: ["10.1.2.3"] } });
  const proxied = {
    "X-Identity-Status": "Confirmed",
    "X-Project-Id": "alpha",
    "X-User-Id": "alice",
    "X-Roles": "member,reader",
  };

  test("from a configured proxy address the identity headers are believed", async () => {
    const res = await fetch(`${trusted().url}/v2/images`, {
      method: "POST",
      headers: { ...proxied, "Content-Type": "application/json" },
      body: JSON.stringify({ name: "p" }),
    });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { owner: string }).owner).toBe("alpha");
  });

  test("from any other address the same headers are not: 401, even claiming admin", async () => {
    const res = await fetch(`${elsewhere().url}/v2/images`, {
      headers: { ...proxied, "X-Roles": "admin", ...json },
    });
    expect(res.status).toBe(401);
  });

  test("a proxy that did not confirm the identity gets 401", async () => {
    for (const status of ["Invalid", undefined]) {
      const headers: Record<string, string> = { ...proxied };
      if (status) headers["X-Identity-Status"] = status;
      else delete headers["X-Identity-Status"];
      expect((await fetch(`${trusted().url}/v2/images`, { headers })).status).toBe(401);
    }
  });

  test("proxy addresses: single addresses and CIDR ranges, IPv4 seen through IPv6 sockets, nothing else", () => {
    const t = new TrustedHeaders(["10.0.0.0/8", "192.168.1.7", "fd00::/8"]);
    expect(t.fromTrustedProxy("10.200.1.1")).toBe(true);
    expect(t.fromTrustedProxy("::ffff:10.9.9.9")).toBe(true);
    expect(t.fromTrustedProxy("192.168.1.7")).toBe(true);
    expect(t.fromTrustedProxy("fd12::1")).toBe(true);
    expect(t.fromTrustedProxy("11.0.0.1")).toBe(false);
    expect(t.fromTrustedProxy("192.168.1.8")).toBe(false);
    expect(t.fromTrustedProxy("127.0.0.1")).toBe(false);
    expect(t.fromTrustedProxy("fe80::1")).toBe(false);
    expect(t.fromTrustedProxy(undefined)).toBe(false);
    expect(() => new TrustedHeaders(["localhost"])).toThrow(/not an IP address/);
    expect(() => new TrustedHeaders(["10.0.0.0/33"])).toThrow(/prefix/);
  });
});

describe("none mode (the embedded default)", () => {
  const s = sharedServer({});
  test("every caller is the local admin: no credentials needed anywhere, images have no owner", async () => {
    const res = await fetch(`${s().url}/v2/images`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: "n" }),
    });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { owner: string | null }).owner).toBeNull();
    expect((await fetch(`${s().url}/tessera/v1/stats`)).status).toBe(200);
    expect(await (await fetch(`${s().url}/v2/info/usage`)).json()).toEqual({ usage: {} });
  });
});

describe("configuration of auth and quotas", () => {
  const load = (file: Record<string, unknown>) =>
    loadConfig(undefined, { TESSERA_AUTH: JSON.stringify(file) }, {});
  test("each mode takes its own keys, checked", () => {
    expect(load({ mode: "trusted-headers", trustedProxies: ["127.0.0.1"] }).auth).toEqual({
      mode: "trusted-headers",
      trustedProxies: ["127.0.0.1"],
    });
    expect(() => load({ mode: "ldap" })).toThrow(ConfigError);
    expect(() => load({ mode: "trusted-headers", trustedProxies: [] })).toThrow(/trustedProxies/);
    expect(() => load({ mode: "trusted-headers", trustedProxies: ["example.org"] })).toThrow(/not an IP/);
    expect(() => load({ mode: "tokens" })).toThrow(/tokensFile/);
    expect(() => load({ mode: "keystone", keystone: { url: "http://127.0.0.1:5000/v3" } })).toThrow(
      /username is required/,
    );
    expect(() =>
      load({
        mode: "keystone",
        keystone: { url: "u", username: "s", password: "p", projectName: "service", cache: 5 },
      }),
    ).toThrow(/unknown key "cache"/);
    expect(() => load({ mode: "none", trustedProxies: ["127.0.0.1"] })).toThrow(/unknown key/);
  });

  test("quotas take Glance's unified-limit names, by default and per project", () => {
    const q = { default: { image_count_total: 10 }, projects: { alpha: { image_size_total: 1024 } } };
    expect(loadConfig(undefined, { TESSERA_QUOTAS: JSON.stringify(q) }, {}).quotas).toEqual(q);
    expect(() => loadConfig(undefined, { TESSERA_QUOTAS: '{"default": {"images": 3}}' }, {})).toThrow(
      /unknown quota "images"/,
    );
    expect(() =>
      loadConfig(undefined, { TESSERA_QUOTAS: '{"default": {"image_count_total": "3"}}' }, {}),
    ).toThrow(/must be an integer/);
  });
});
