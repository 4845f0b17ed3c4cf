import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { nodeHashName } from "../../src/config/hash-names.js";
import { loadConfig } from "../../src/config/load.js";
import { ConfigError, DEFAULT_CONFIG } from "../../src/config/server-config.js";

async function withFile(content: string, fn: (path: string) => void): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "tessera-config-"));
  try {
    const path = join(dir, "tessera.json");
    await writeFile(path, content);
    fn(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("server configuration", () => {
  it("is the embedded default with nothing given: 127.0.0.1:9292, ./data, fsync, sha512", () => {
    expect(loadConfig(undefined, {}, {})).toEqual(DEFAULT_CONFIG);
    expect(DEFAULT_CONFIG).toMatchObject({ host: "127.0.0.1", port: 9292, dataDir: "./data", fsync: true });
  });

  it("layers file, then environment, then flags", async () => {
    await withFile(
      JSON.stringify({ port: 1000, host: "0.0.0.0", imageTagQuota: 7, logLevel: "warn" }),
      (path) => {
        const cfg = loadConfig(path, { TESSERA_PORT: "2000", TESSERA_LOG_LEVEL: "error" }, { port: "3000" });
        expect(cfg).toMatchObject({ port: 3000, host: "0.0.0.0", imageTagQuota: 7, logLevel: "error" });
        expect(loadConfig(path, { TESSERA_PORT: "2000", TESSERA_FSYNC: "false" }, {})).toMatchObject({
          port: 2000,
          fsync: false,
        });
      },
    );
  });

  it("refuses unknown keys, wrong types, bad JSON and hash algorithms Node lacks", async () => {
    for (const content of [
      '{"prot": 1}',
      '{"port": "http"}',
      '{"port": 70000}',
      '{"fsync": "sometimes"}',
      '{"logLevel": "loud"}',
      '{"osHashAlgo": "md6"}',
      '{"limitParamDefault": 5000}',
      "[1]",
      "{",
    ]) {
      await withFile(content, (path) => {
        expect(() => loadConfig(path, {}, {}), content).toThrow(ConfigError);
      });
    }
    expect(() => loadConfig(undefined, { TESSERA_PORT: "-1" }, {})).toThrow(ConfigError);
  });

  it("takes a lease's time to live from the environment and refuses one under 2 seconds", () => {
    expect(loadConfig(undefined, { TESSERA_LEASE_SECONDS: "6" }, {}).leaseSeconds).toBe(6);
    expect(() => loadConfig(undefined, { TESSERA_LEASE_SECONDS: "1" }, {})).toThrow(
      /leaseSeconds must be at least 2/,
    );
  });

  it("takes a public endpoint and address lists for proxies and scrapers, refusing what would not parse", async () => {
    const env = {
      TESSERA_PUBLIC_ENDPOINT: "https://images.example.com/glance/",
      TESSERA_PROXY_HEADERS_FROM: "10.0.0.5, 10.1.0.0/16",
      TESSERA_METRICS_SCRAPERS: "192.0.2.10,2001:db8::/32",
    };
    expect(loadConfig(undefined, env, {})).toMatchObject({
      publicEndpoint: "https://images.example.com/glance",
      proxyHeadersFrom: ["10.0.0.5", "10.1.0.0/16"],
      metricsScrapers: ["192.0.2.10", "2001:db8::/32"],
    });
    await withFile(
      JSON.stringify({ metricsScrapers: ["127.0.0.1"], publicEndpoint: "http://a:9292" }),
      (path) =>
        expect(loadConfig(path, {}, {})).toMatchObject({
          metricsScrapers: ["127.0.0.1"],
          publicEndpoint: "http://a:9292",
        }),
    );
    for (const bad of [
      { TESSERA_PUBLIC_ENDPOINT: "images.example.com" },
      { TESSERA_PUBLIC_ENDPOINT: "ftp://images.example.com" },
      { TESSERA_PUBLIC_ENDPOINT: "https://images.example.com/?a=b" },
      { TESSERA_PROXY_HEADERS_FROM: "proxy.example.com" },
      { TESSERA_METRICS_SCRAPERS: "10.0.0.0/33" },
    ]) {
      expect(() => loadConfig(undefined, bad, {}), JSON.stringify(bad)).toThrow(ConfigError);
    }
    await withFile(JSON.stringify({ metricsScrapers: [10] }), (path) =>
      expect(() => loadConfig(path, {}, {})).toThrow(/metricsScrapers must be a list/),
    );
  });

  it("maps hashlib names to Node's", () => {
    expect(nodeHashName("sha3_256")).toBe("sha3-256");
    expect(nodeHashName("blake2b")).toBe("blake2b512");
    expect(nodeHashName("sha256")).toBe("sha256");
    expect(loadConfig(undefined, { TESSERA_OS_HASH_ALGO: "sha3_512" }, {}).osHashAlgo).toBe("sha3_512");
  });

  it("takes several stores, a default and a read order, from a file or the environment", async () => {
    const stores = {
      local: { type: "filesystem" },
      edge: { type: "filesystem", path: "/srv/edge", compression: "zstd", description: "edge site" },
      central: { type: "s3", endpoint: "http://127.0.0.1:7480", region: "us-east-1", bucket: "tessera" },
    };
    await withFile(JSON.stringify({ stores, defaultStore: "central", storeReadOrder: ["edge"] }), (path) => {
      expect(loadConfig(path, {}, {})).toMatchObject({
        stores,
        defaultStore: "central",
        storeReadOrder: ["edge"],
      });
    });
    const env = {
      TESSERA_STORES: JSON.stringify(stores),
      TESSERA_DEFAULT_STORE: "edge",
      TESSERA_STORE_READ_ORDER: "local, central",
    };
    expect(loadConfig(undefined, env, {})).toMatchObject({
      defaultStore: "edge",
      storeReadOrder: ["local", "central"],
    });
  });

  it("refuses stores that cannot work: unknown type or key, no bucket, a default or read order naming no store, two stores in one place", () => {
    const s3 = { type: "s3", region: "r", bucket: "b" };
    for (const [what, env] of [
      ["unknown type", { TESSERA_STORES: '{"a": {"type": "ftp"}}' }],
      ["unknown key", { TESSERA_STORES: '{"a": {"type": "filesystem", "root": "/x"}}' }],
      ["bad compression", { TESSERA_STORES: '{"a": {"type": "filesystem", "compression": "lz4"}}' }],
      ["no bucket", { TESSERA_STORES: '{"a": {"type": "s3", "region": "r"}}' }],
      ["no store", { TESSERA_STORES: "{}" }],
      ["bad name", { TESSERA_STORES: '{"a b": {"type": "filesystem"}}' }],
      ["default elsewhere", { TESSERA_STORES: '{"a": {"type": "filesystem"}}', TESSERA_DEFAULT_STORE: "b" }],
      ["read order elsewhere", { TESSERA_STORE_READ_ORDER: "local,nowhere" }],
      [
        "same directory",
        {
          TESSERA_STORES:
            '{"local": {"type": "filesystem"}, "b": {"type": "filesystem", "path": "./data/objects"}}',
        },
      ],
      [
        "same bucket and prefix",
        { TESSERA_STORES: JSON.stringify({ local: s3, b: s3 }), TESSERA_DEFAULT_STORE: "b" },
      ],
    ] as const) {
      expect(() => loadConfig(undefined, env, {}), what).toThrow(ConfigError);
    }
    // The same bucket under two prefixes is two places.
    const two = { local: { ...s3, prefix: "a/" }, b: { ...s3, prefix: "b/" } };
    expect(loadConfig(undefined, { TESSERA_STORES: JSON.stringify(two) }, {}).stores).toEqual(two);
  });
});
