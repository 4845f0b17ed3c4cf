/**
 * Loading the configuration: the defaults, then a JSON file, then environment variables, then
 * command-line flags, each overriding the one before. Unknown keys are refused so that a typo
 * does not pass silently; so are values of the wrong type and settings that cannot work
 * together (a default store that is not configured, two stores in one place).
 */
import { getHashes } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { addressList } from "../auth/trusted-headers.js";
import { IMPORT_METHODS } from "../images/imports.js";
import { filesystemStorePath } from "../store/open-store.js";
import { nodeHashName } from "./hash-names.js";
import { isSection, sectionValue } from "./sections.js";
import { ConfigError, DEFAULT_CONFIG, type ServerConfig } from "./server-config.js";

/** Environment variables and the keys they set. */
export const ENV_KEYS: Record<string, keyof ServerConfig> = {
  TESSERA_HOST: "host",
  TESSERA_PORT: "port",
  TESSERA_PUBLIC_ENDPOINT: "publicEndpoint",
  TESSERA_PROXY_HEADERS_FROM: "proxyHeadersFrom",
  TESSERA_METRICS_SCRAPERS: "metricsScrapers",
  TESSERA_DATA: "dataDir",
  TESSERA_WORKERS: "workers",
  TESSERA_FSYNC: "fsync",
  TESSERA_OS_HASH_ALGO: "osHashAlgo",
  TESSERA_IMAGE_SIZE_CAP: "imageSizeCap",
  TESSERA_VERIFY_ON_READ: "verifyOnRead",
  TESSERA_SHUTDOWN_GRACE_SECONDS: "shutdownGraceSeconds",
  TESSERA_CLIENT_IDLE_SECONDS: "clientIdleSeconds",
  TESSERA_MAX_UPLOADS: "maxUploads",
  TESSERA_LOG_LEVEL: "logLevel",
  TESSERA_FORMATS: "formats",
  TESSERA_STORES: "stores",
  TESSERA_DEFAULT_STORE: "defaultStore",
  TESSERA_STORE_READ_ORDER: "storeReadOrder",
  TESSERA_CHUNK_SIZE: "chunkSize",
  TESSERA_GC_INTERVAL_SECONDS: "gcIntervalSeconds",
  TESSERA_GC_GRACE_SECONDS: "gcGraceSeconds",
  TESSERA_LEASE_SECONDS: "leaseSeconds",
  TESSERA_LOCATION_CACHE_ENTRIES: "locationCacheEntries",
  TESSERA_SCRUB_INTERVAL_SECONDS: "scrubIntervalSeconds",
  TESSERA_SCRUB_BYTES_PER_SECOND: "scrubBytesPerSecond",
  TESSERA_AUTH: "auth",
  TESSERA_QUOTAS: "quotas",
  TESSERA_IMPORT_METHODS: "importMethods",
  TESSERA_IMPORT_FILTER: "importFilter",
  TESSERA_IMPORT_PLUGINS: "importPlugins",
  TESSERA_CACHE: "cache",
  TESSERA_CATALOG: "catalog",
};

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** A list of words: a JSON array, or from the environment "a,b,c"; undefined if it is neither. */
function wordList(value: unknown): string[] | undefined {
  const v =
    typeof value === "string"
      ? value
          .split(",")
          .map((x) => x.trim())
          .filter((x) => x !== "")
      : value;
  return Array.isArray(v) && v.every((x) => typeof x === "string" && x !== "") ? v : undefined;
}

/** A list of names (stores, import methods). */
function nameList(value: unknown, source: string, key: string): string[] {
  const v = wordList(value);
  if (!v) throw new ConfigError(`${source}: ${key} must be a list of store names`);
  return v;
}

/** A list of IP addresses and CIDR ranges, checked as the server will read it. */
function addresses(value: unknown, source: string, key: string): string[] {
  const v = wordList(value);
  if (!v) throw new ConfigError(`${source}: ${key} must be a list of IP addresses and CIDR ranges`);
  try {
    addressList(v);
  } catch (e) {
    throw new ConfigError(`${source}: ${key}: ${(e as Error).message}`);
  }
  return v;
}

/** Glance's public_endpoint: an absolute http(s) URL, kept without its trailing slashes. */
function endpoint(value: unknown, source: string, key: string): string {
  const bad = () =>
    new ConfigError(`${source}: ${key} must be an http or https URL such as https://images.example.com`);
  if (typeof value !== "string") throw bad();
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw bad();
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.search || url.hash || url.username) {
    throw bad();
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, "");
}

/** A plain value, of the type its default has; the environment gives everything as text. */
function scalar(key: keyof ServerConfig, value: unknown, source: string): unknown {
  if (key === "storeReadOrder") return nameList(value, source, key);
  if (key === "proxyHeadersFrom" || key === "metricsScrapers") return addresses(value, source, key);
  if (key === "publicEndpoint") return endpoint(value, source, key);
  if (key === "importMethods") {
    const list = nameList(value, source, key);
    for (const m of list) {
      if (!(IMPORT_METHODS as readonly string[]).includes(m)) {
        throw new ConfigError(`${source}: importMethods: "${m}" is not one of ${IMPORT_METHODS.join(", ")}`);
      }
    }
    return list;
  }
  if (key === "imageMemberQuota") {
    const n = typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : value;
    if (typeof n !== "number" || !Number.isSafeInteger(n)) {
      throw new ConfigError(`${source}: ${key} must be an integer (negative: no limit)`);
    }
    return n;
  }
  if (key === "workers") {
    const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) {
      throw new ConfigError(`${source}: workers must be an integer of at least 1`);
    }
    return n;
  }
  const def = DEFAULT_CONFIG[key];
  if (typeof def === "number") {
    const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
      throw new ConfigError(`${source}: ${key} must be a non-negative integer`);
    }
    return n;
  }
  if (typeof def === "boolean") {
    if (value === "true" || value === "1") return true;
    if (value === "false" || value === "0") return false;
    if (typeof value !== "boolean") throw new ConfigError(`${source}: ${key} must be true or false`);
    return value;
  }
  if (typeof value !== "string" || value === "") throw new ConfigError(`${source}: ${key} must be a string`);
  return value;
}

function merge(into: ServerConfig, from: Record<string, unknown>, source: string): void {
  for (const [k, v] of Object.entries(from)) {
    if (v === undefined) continue;
    if (!(k in DEFAULT_CONFIG)) throw new ConfigError(`${source}: unknown key "${k}"`);
    const key = k as keyof ServerConfig;
    (into as unknown as Record<string, unknown>)[k] = isSection(key)
      ? sectionValue(key, v, source, into)
      : scalar(key, v, source);
  }
}

/** Where a store keeps its objects, so that two stores on the same objects are caught. */
function placeOf(cfg: ServerConfig, name: string): string {
  const st = cfg.stores[name];
  if (st.type === "filesystem") return `file:${resolve(filesystemStorePath(st, cfg.dataDir, name))}`;
  if (st.type === "s3") return `s3:${st.endpoint ?? ""}/${st.bucket}/${st.prefix ?? ""}`;
  return `swift:${st.storageUrl ?? st.authUrl}/${st.container}/${st.prefix ?? ""}`;
}

/** Refuses settings that are each valid but cannot work together. */
function checkTogether(cfg: ServerConfig): void {
  if (cfg.port > 65535) throw new ConfigError(`port must be at most 65535`);
  if (cfg.leaseSeconds < 2) throw new ConfigError(`leaseSeconds must be at least 2`);
  if (!Number.isSafeInteger(cfg.locationCacheEntries) || cfg.locationCacheEntries < 0) {
    throw new ConfigError(`locationCacheEntries must be a whole number, at least 0`);
  }
  if (!LOG_LEVELS.includes(cfg.logLevel))
    throw new ConfigError(`logLevel must be one of ${LOG_LEVELS.join(", ")}`);
  if (!getHashes().includes(nodeHashName(cfg.osHashAlgo))) {
    throw new ConfigError(`osHashAlgo "${cfg.osHashAlgo}" is not a hash algorithm this Node.js provides`);
  }
  if (!cfg.stores[cfg.defaultStore]) {
    throw new ConfigError(
      `defaultStore "${cfg.defaultStore}" is not one of the stores (${Object.keys(cfg.stores).join(", ")})`,
    );
  }
  for (const name of cfg.storeReadOrder) {
    if (!cfg.stores[name])
      throw new ConfigError(`storeReadOrder names "${name}", which is not one of the stores`);
  }
  // Two stores on the same objects would each count the other's packs as garbage.
  const where = new Map<string, string>();
  for (const name of Object.keys(cfg.stores)) {
    const at = placeOf(cfg, name);
    const other = where.get(at);
    if (other)
      throw new ConfigError(`stores "${other}" and "${name}" would keep their objects in the same place`);
    where.set(at, name);
  }
  const c = cfg.chunkSize;
  if (c !== 0 && !(c >= 4096 && c <= 1024 * 1024 && (c & (c - 1)) === 0)) {
    throw new ConfigError("chunkSize must be a power of two from 4096 to 1048576 (or 0: the store's own)");
  }
  if (cfg.limitParamDefault < 1 || cfg.apiLimitMax < cfg.limitParamDefault) {
    throw new ConfigError(`limitParamDefault must be at least 1 and at most apiLimitMax`);
  }
}

/**
 * The configuration from `file` (optional), `env` and `flags` over the defaults, checked.
 * Throws ConfigError, naming where the fault is, for anything it refuses.
 */
export function loadConfig(
  file: string | undefined,
  env: NodeJS.ProcessEnv,
  flags: Partial<Record<keyof ServerConfig, unknown>>,
): ServerConfig {
  const cfg = { ...DEFAULT_CONFIG };
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
      throw new ConfigError(`${file}: ${(e as Error).message}`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`${file}: must hold a JSON object`);
    }
    merge(cfg, parsed as Record<string, unknown>, file);
  }
  const fromEnv: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV_KEYS)) if (env[name] !== undefined) fromEnv[key] = env[name];
  merge(cfg, fromEnv, "environment");
  merge(cfg, flags, "command line");
  checkTogether(cfg);
  return cfg;
}
