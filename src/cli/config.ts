/**
 * Server configuration: defaults, then a JSON file, then environment variables, then
 * command-line flags, each overriding the one before. Every key is documented in
 * docs/configuration.md; unknown keys are refused so that a typo does not pass silently.
 */

import { getHashes } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { ImportPlugins, ServerOptions } from "../api/server.js";
import { AUTH_MODES, type AuthConfig } from "../auth/open-auth.js";
import { addressList } from "../auth/trusted-headers.js";
import { type ChunkerParams, chunkerForAverage } from "../chunker/params.js";
import { RULE_NAMES, type RuleName } from "../formats/inspector.js";
import { DEFAULT_FORMAT_POLICY, type FormatPolicy } from "../formats/rules.js";
import { IMPORT_METHODS } from "../images/imports.js";
import { QUOTA_NAMES, type QuotaConfig, type QuotaLimits } from "../images/quotas.js";
import { DEFAULT_IMPORT_FILTER, type ImportFilter } from "../images/web-source.js";
import { DEFAULT_STORES, filesystemStorePath, type StoreConfig } from "../store/open-store.js";

/** Everything `tessera serve` takes; ServerOptions documents each key. */
export type ServerConfig = Omit<ServerOptions, "osHashNodeName">;

export const DEFAULT_CONFIG: ServerConfig = {
  host: "127.0.0.1",
  port: 9292,
  dataDir: "./data",
  fsync: true,
  osHashAlgo: "sha512",
  imageSizeCap: 1024 ** 4,
  limitParamDefault: 25,
  apiLimitMax: 1000,
  imagePropertyQuota: 128,
  imageTagQuota: 128,
  imageMemberQuota: 128,
  dedupWriteThrough: false,
  maxJsonBodyBytes: 1024 * 1024,
  verifyOnRead: true,
  shutdownGraceSeconds: 30,
  clientIdleSeconds: 900,
  maxUploads: 16,
  logLevel: "info",
  formats: DEFAULT_FORMAT_POLICY,
  stores: DEFAULT_STORES,
  defaultStore: "local",
  storeReadOrder: [],
  chunkSize: 0,
  gcIntervalSeconds: 3600,
  gcGraceSeconds: 3600,
  scrubIntervalSeconds: 7 * 24 * 3600,
  scrubBytesPerSecond: 50_000_000,
  auth: { mode: "none" },
  quotas: undefined,
  importMethods: [...IMPORT_METHODS],
  importFilter: DEFAULT_IMPORT_FILTER,
  webDownloadIdleTimeoutSeconds: 60,
  webDownloadMaxRedirects: 5,
  importPlugins: {},
};

/** Environment variables and the keys they set. */
export const ENV_KEYS: Record<string, keyof ServerConfig> = {
  TESSERA_HOST: "host",
  TESSERA_PORT: "port",
  TESSERA_DATA: "dataDir",
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
  TESSERA_SCRUB_INTERVAL_SECONDS: "scrubIntervalSeconds",
  TESSERA_SCRUB_BYTES_PER_SECOND: "scrubBytesPerSecond",
  TESSERA_AUTH: "auth",
  TESSERA_QUOTAS: "quotas",
  TESSERA_IMPORT_METHODS: "importMethods",
  TESSERA_IMPORT_FILTER: "importFilter",
  TESSERA_IMPORT_PLUGINS: "importPlugins",
};

export class ConfigError extends Error {}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** The chunker a configured chunkSize asks for, if any (0: the data directory's own). */
export function chunkerOf(cfg: { chunkSize: number }): ChunkerParams | undefined {
  return cfg.chunkSize === 0 ? undefined : chunkerForAverage(cfg.chunkSize);
}

/** hashlib names (what Glance's os_hash_algo reports) → Node crypto names. */
export function nodeHashName(hashlib: string): string {
  const map: Record<string, string> = {
    sha3_224: "sha3-224",
    sha3_256: "sha3-256",
    sha3_384: "sha3-384",
    sha3_512: "sha3-512",
    blake2b: "blake2b512",
    blake2s: "blake2s256",
  };
  return map[hashlib] ?? hashlib;
}

function coerce(key: keyof ServerConfig, value: unknown, source: string, current: ServerConfig): unknown {
  if (key === "formats") return formatPolicy(value, current.formats, source);
  if (key === "stores") return stores(value, source);
  if (key === "storeReadOrder") return nameList(value, source, key);
  if (key === "auth") return authConfig(value, source);
  if (key === "quotas") return quotaConfig(value, source);
  if (key === "importMethods") {
    const list = nameList(value, source, key);
    for (const m of list) {
      if (!(IMPORT_METHODS as readonly string[]).includes(m)) {
        throw new ConfigError(`${source}: importMethods: "${m}" is not one of ${IMPORT_METHODS.join(", ")}`);
      }
    }
    return list;
  }
  if (key === "importFilter") return importFilter(value, current.importFilter, source);
  if (key === "importPlugins") return importPlugins(value, source);
  if (key === "imageMemberQuota") {
    const n = typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : value;
    if (typeof n !== "number" || !Number.isSafeInteger(n)) {
      throw new ConfigError(`${source}: ${key} must be an integer (negative: no limit)`);
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
    (into as unknown as Record<string, unknown>)[k] = coerce(k as keyof ServerConfig, v, source, into);
  }
}

/** A list of names: a JSON array, or from the environment "a,b,c". */
function nameList(value: unknown, source: string, key: string): string[] {
  const v =
    typeof value === "string"
      ? value
          .split(",")
          .map((x) => x.trim())
          .filter((x) => x !== "")
      : value;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string" && x !== "")) {
    throw new ConfigError(`${source}: ${key} must be a list of store names`);
  }
  return v;
}

/** An object-valued key: an object from a file, JSON text from the environment. */
function objectValue(value: unknown, bad: (why: string) => ConfigError): Record<string, unknown> {
  let v = value;
  if (typeof v === "string") {
    try {
      v = JSON.parse(v);
    } catch {
      throw bad("must be a JSON object");
    }
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad("must be an object");
  return v as Record<string, unknown>;
}

/**
 * `formats` is an object merged key by key over what is already set: {"inspect": bool,
 * "rules": {"<rule>": bool, ...}, "vmdkCreateTypes": [..]}. From the environment it is JSON.
 */
function formatPolicy(value: unknown, current: FormatPolicy, source: string): FormatPolicy {
  const bad = (why: string) => new ConfigError(`${source}: formats: ${why}`);
  const v = objectValue(value, bad);
  const out: FormatPolicy = { ...current, rules: { ...current.rules } };
  for (const [k, x] of Object.entries(v)) {
    if (k === "inspect") {
      if (typeof x !== "boolean") throw bad("inspect must be true or false");
      out.inspect = x;
    } else if (k === "rules") {
      if (typeof x !== "object" || x === null || Array.isArray(x)) throw bad("rules must be an object");
      for (const [rule, on] of Object.entries(x)) {
        if (!(RULE_NAMES as readonly string[]).includes(rule)) throw bad(`unknown rule "${rule}"`);
        if (typeof on !== "boolean") throw bad(`rule ${rule} must be true or false`);
        out.rules[rule as RuleName] = on;
      }
    } else if (k === "vmdkCreateTypes") {
      if (!Array.isArray(x) || !x.every((t) => typeof t === "string" && t !== "")) {
        throw bad("vmdkCreateTypes must be a list of names");
      }
      out.vmdkCreateTypes = x;
    } else {
      throw bad(`unknown key "${k}"`);
    }
  }
  return out;
}

const KEYSTONE_KEYS: Record<string, "string" | "number"> = {
  url: "string",
  username: "string",
  password: "string",
  projectName: "string",
  userDomain: "string",
  projectDomain: "string",
  cacheSeconds: "number",
  cacheEntries: "number",
  timeoutMs: "number",
};

/**
 * `auth`: {"mode": "none"}, {"mode": "tokens", "tokensFile": path},
 * {"mode": "trusted-headers", "trustedProxies": [addresses or CIDRs]}, or
 * {"mode": "keystone", "keystone": {url, username, password, projectName, ...}}.
 */
function authConfig(value: unknown, source: string): AuthConfig {
  const bad = (why: string) => new ConfigError(`${source}: auth: ${why}`);
  const v = objectValue(value, bad);
  const mode = v.mode;
  if (!(AUTH_MODES as readonly unknown[]).includes(mode))
    throw bad(`mode must be one of ${AUTH_MODES.join(", ")}`);
  const allowedKeys: Record<string, string[]> = {
    none: ["mode"],
    tokens: ["mode", "tokensFile"],
    "trusted-headers": ["mode", "trustedProxies"],
    keystone: ["mode", "keystone"],
  };
  for (const k of Object.keys(v)) {
    if (!allowedKeys[mode as string]?.includes(k)) throw bad(`unknown key "${k}" for mode ${mode}`);
  }
  if (mode === "tokens") {
    if (typeof v.tokensFile !== "string" || v.tokensFile === "") throw bad("tokensFile must be a path");
    return { mode, tokensFile: v.tokensFile };
  }
  if (mode === "trusted-headers") {
    const list = v.trustedProxies;
    if (!Array.isArray(list) || list.length === 0 || !list.every((x) => typeof x === "string")) {
      throw bad("trustedProxies must list the proxies' addresses");
    }
    try {
      addressList(list);
    } catch (e) {
      throw bad((e as Error).message);
    }
    return { mode, trustedProxies: list };
  }
  if (mode === "keystone") {
    const k = objectValue(v.keystone, (why) => bad(`keystone ${why}`));
    for (const [key, x] of Object.entries(k)) {
      if (!KEYSTONE_KEYS[key]) throw bad(`keystone: unknown key "${key}"`);
      if (typeof x !== KEYSTONE_KEYS[key]) throw bad(`keystone: ${key} must be a ${KEYSTONE_KEYS[key]}`);
    }
    for (const key of ["url", "username", "password", "projectName"]) {
      if (!k[key]) throw bad(`keystone: ${key} is required`);
    }
    return { mode, keystone: k as unknown as Extract<AuthConfig, { mode: "keystone" }>["keystone"] };
  }
  return { mode: "none" };
}

/** `importFilter`: Glance's import_filtering_opts, merged key by key over what is set. */
function importFilter(value: unknown, current: ImportFilter, source: string): ImportFilter {
  const bad = (why: string) => new ConfigError(`${source}: importFilter: ${why}`);
  const v = objectValue(value, bad);
  const out: ImportFilter = { ...current };
  for (const [k, x] of Object.entries(v)) {
    if (!(k in DEFAULT_IMPORT_FILTER)) throw bad(`unknown key "${k}"`);
    const numeric = k.endsWith("Ports");
    const ok =
      Array.isArray(x) &&
      x.every((e) =>
        numeric ? Number.isSafeInteger(e) && e > 0 && e < 65536 : typeof e === "string" && e !== "",
      );
    if (!ok) throw bad(`${k} must be a list of ${numeric ? "port numbers" : "names"}`);
    (out as unknown as Record<string, unknown>)[k] = numeric
      ? x
      : (x as string[]).map((e) => e.toLowerCase());
  }
  return out;
}

/** `importPlugins`: {"imageConversion": {"outputFormat"}, "injectMetadata": {"properties", "ignoreUserRoles"}}. */
function importPlugins(value: unknown, source: string): ImportPlugins {
  const bad = (why: string) => new ConfigError(`${source}: importPlugins: ${why}`);
  const v = objectValue(value, bad);
  const out: ImportPlugins = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === "imageConversion") {
      const c = objectValue(x, (why) => bad(`imageConversion ${why}`));
      if (
        typeof c.outputFormat !== "string" ||
        !/^[a-z0-9]+$/.test(c.outputFormat) ||
        Object.keys(c).length !== 1
      ) {
        throw bad('imageConversion takes {"outputFormat": "<disk format>"}');
      }
      out.imageConversion = { outputFormat: c.outputFormat };
    } else if (k === "injectMetadata") {
      const m = objectValue(x, (why) => bad(`injectMetadata ${why}`));
      const props = objectValue(m.properties ?? {}, (why) => bad(`injectMetadata.properties ${why}`));
      if (!Object.values(props).every((p) => typeof p === "string")) {
        throw bad("injectMetadata.properties must map names to strings");
      }
      const roles = m.ignoreUserRoles ?? ["admin"];
      if (!Array.isArray(roles) || !roles.every((r) => typeof r === "string")) {
        throw bad("injectMetadata.ignoreUserRoles must be a list of role names");
      }
      for (const key of Object.keys(m)) {
        if (key !== "properties" && key !== "ignoreUserRoles")
          throw bad(`injectMetadata: unknown key "${key}"`);
      }
      out.injectMetadata = { properties: props as Record<string, string>, ignoreUserRoles: roles };
    } else {
      throw bad(`unknown key "${k}"`);
    }
  }
  return out;
}

/** `quotas`: {"default": {name: limit}, "projects": {"<project id>": {name: limit}}}. */
function quotaConfig(value: unknown, source: string): QuotaConfig {
  const bad = (why: string) => new ConfigError(`${source}: quotas: ${why}`);
  const v = objectValue(value, bad);
  const limits = (x: unknown, where: string): QuotaLimits => {
    const o = objectValue(x, (why) => bad(`${where} ${why}`));
    for (const [name, n] of Object.entries(o)) {
      if (!(QUOTA_NAMES as readonly string[]).includes(name)) {
        throw bad(`${where}: unknown quota "${name}" (one of ${QUOTA_NAMES.join(", ")})`);
      }
      if (typeof n !== "number" || !Number.isSafeInteger(n))
        throw bad(`${where}: ${name} must be an integer`);
    }
    return o as QuotaLimits;
  };
  const out: QuotaConfig = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === "default") out.default = limits(x, "default");
    else if (k === "projects") {
      const p = objectValue(x, (why) => bad(`projects ${why}`));
      out.projects = Object.fromEntries(
        Object.entries(p).map(([id, l]) => [id, limits(l, `projects.${id}`)]),
      );
    } else throw bad(`unknown key "${k}"`);
  }
  return out;
}

const STORE_KEYS: Record<string, Record<string, "string" | "number" | "boolean">> = {
  filesystem: { type: "string", description: "string", path: "string", compression: "string" },
  s3: {
    type: "string",
    description: "string",
    endpoint: "string",
    region: "string",
    bucket: "string",
    prefix: "string",
    forcePathStyle: "boolean",
    accessKeyId: "string",
    secretAccessKey: "string",
    sessionToken: "string",
    partSize: "number",
    maxSockets: "number",
    maxPuts: "number",
    maxGets: "number",
    attempts: "number",
    readAheadBytes: "number",
    packSize: "number",
    compression: "string",
  },
  swift: {
    type: "string",
    description: "string",
    authUrl: "string",
    authVersion: "number",
    user: "string",
    key: "string",
    username: "string",
    password: "string",
    projectName: "string",
    userDomain: "string",
    projectDomain: "string",
    region: "string",
    interface: "string",
    storageUrl: "string",
    container: "string",
    prefix: "string",
    segmentSize: "number",
    timeoutMs: "number",
    maxPuts: "number",
    maxGets: "number",
    attempts: "number",
    readAheadBytes: "number",
    packSize: "number",
    compression: "string",
  },
};

/** `stores`: {"name": {"type": "filesystem"|"s3"|"swift", ...}}, replacing the default; JSON from the environment. */
function stores(value: unknown, source: string): Record<string, StoreConfig> {
  const bad = (why: string) => new ConfigError(`${source}: stores: ${why}`);
  const v = objectValue(value, bad);
  const out: Record<string, StoreConfig> = {};
  for (const [name, cfg] of Object.entries(v)) {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(name))
      throw bad(`store name "${name}" must be letters, digits, - or _`);
    if (typeof cfg !== "object" || cfg === null) throw bad(`${name} must be an object`);
    const type = (cfg as { type?: unknown }).type;
    const keys = STORE_KEYS[String(type)];
    if (!keys) throw bad(`${name}: type must be "filesystem", "s3" or "swift"`);
    for (const [k, x] of Object.entries(cfg)) {
      if (!keys[k]) throw bad(`${name}: unknown key "${k}"`);
      if (typeof x !== keys[k]) throw bad(`${name}: ${k} must be a ${keys[k]}`);
    }
    const compression = (cfg as { compression?: string }).compression;
    if (compression !== undefined && compression !== "zstd" && compression !== "none") {
      throw bad(`${name}: compression must be "zstd" or "none"`);
    }
    if (type === "s3" && !(cfg as { bucket?: string }).bucket) throw bad(`${name}: bucket is required`);
    if (type === "s3" && !(cfg as { region?: string }).region) throw bad(`${name}: region is required`);
    if (type === "swift") {
      const sw = cfg as {
        authUrl?: string;
        container?: string;
        authVersion?: number;
        user?: string;
        username?: string;
      };
      if (!sw.authUrl || !sw.container) throw bad(`${name}: authUrl and container are required`);
      if (sw.authVersion !== undefined && sw.authVersion !== 1 && sw.authVersion !== 3) {
        throw bad(`${name}: authVersion is 1 (tempauth) or 3 (Keystone)`);
      }
      if ((sw.authVersion ?? 1) === 1 ? !sw.user : !sw.username) {
        throw bad(
          `${name}: ${(sw.authVersion ?? 1) === 1 ? "user and key" : "username, password and projectName"} are required`,
        );
      }
    }
    out[name] = cfg as StoreConfig;
  }
  if (Object.keys(out).length === 0) throw bad("at least one store is needed");
  return out;
}

/** The configuration from `file` (optional), `env` and `flags`, checked. */
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
  if (cfg.port > 65535) throw new ConfigError(`port must be at most 65535`);
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
  for (const [name, st] of Object.entries(cfg.stores)) {
    const at =
      st.type === "filesystem"
        ? `file:${resolve(filesystemStorePath(st, cfg.dataDir, name))}`
        : st.type === "s3"
          ? `s3:${st.endpoint ?? ""}/${st.bucket}/${st.prefix ?? ""}`
          : `swift:${st.storageUrl ?? st.authUrl}/${st.container}/${st.prefix ?? ""}`;
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
  return cfg;
}
