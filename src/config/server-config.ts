/**
 * The settings of a Tessera process and their defaults: the embedded default is `tessera
 * serve` on 127.0.0.1:9292 with a filesystem store under ./data and no authentication.
 * docs/configuration.md documents every key; src/config/load.ts fills them in.
 */
import { availableParallelism } from "node:os";
import type { AuthConfig } from "../auth/open-auth.js";
import type { CatalogConfig } from "../catalog/open.js";
import { DEFAULT_FORMAT_POLICY, type FormatPolicy } from "../formats/rules.js";
import { IMPORT_METHODS, type ImportMethod } from "../images/imports.js";
import type { QuotaConfig } from "../images/quotas.js";
import { DEFAULT_IMPORT_FILTER, type ImportFilter } from "../images/web-source.js";
import { DEFAULT_STORES, type StoreConfig } from "../store/open-store.js";

export interface ServerConfig {
  host: string;
  port: number;
  /**
   * Glance's public_endpoint: the base URL of every absolute link the API writes (version
   * documents, Location), whatever the request's Host or X-Forwarded-* say. Undefined: the URL
   * the client addressed.
   */
  publicEndpoint: string | undefined;
  /** Addresses and CIDR ranges of proxies whose X-Forwarded-Proto/-Host/-For are believed. */
  proxyHeadersFrom: string[];
  /** Addresses and CIDR ranges that may read GET /metrics without a token (Prometheus). */
  metricsScrapers: string[];
  dataDir: string;
  /**
   * Processes serving the API on the one port (Glance's workers; default: one per CPU). 1: one
   * process, no cluster; more: a primary that holds the directory and forks them (docs/operations.md).
   */
  workers: number;
  /** fsync packs, manifests and the catalog before acknowledging an upload. */
  fsync: boolean;
  /** Glance's hashing_algorithm: the hashlib name reported as os_hash_algo. */
  osHashAlgo: string;
  /** Glance's image_size_cap, bytes. */
  imageSizeCap: number;
  /** Glance's limit_param_default and api_limit_max. */
  limitParamDefault: number;
  apiLimitMax: number;
  /** Glance's image_property_quota and image_tag_quota. */
  imagePropertyQuota: number;
  imageTagQuota: number;
  /** Largest JSON request body (create, patch), bytes. */
  maxJsonBodyBytes: number;
  /** Check every chunk read against its BLAKE3 id (on worker threads) before sending it. */
  verifyOnRead: boolean;
  /** How long a shutdown waits for downloads in progress before cutting them off. */
  shutdownGraceSeconds: number;
  /**
   * A connection silent this long (no byte received or sent) is cut: a stalled upload's image
   * goes back to queued, a download that is not read ends (Glance's client_socket_timeout). 0: never.
   */
  clientIdleSeconds: number;
  /**
   * Uploads and stages in progress at once, and web-download imports at once; past it, 503
   * with Retry-After. 0: no limit.
   */
  maxUploads: number;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** Format inspection of uploads and its safety rules (docs/formats.md). */
  formats: FormatPolicy;
  /** The object stores by name (Glance's enabled_backends), and the one uploads go to. */
  stores: Record<string, StoreConfig>;
  defaultStore: string;
  /**
   * The order downloads try the stores in for each chunk (default: the default store, then
   * the others as configured); stores left out come last.
   */
  storeReadOrder: string[];
  /**
   * Average chunk size of a new data directory (a power of two; min a quarter, max four
   * times). 0: the directory's own, 64 KiB for a new one. A directory keeps the size it was
   * created with: another is refused at start.
   */
  chunkSize: number;
  /** Seconds between background garbage collections (0: none, only on demand). */
  gcIntervalSeconds: number;
  /** Seconds an unreferenced pack or manifest waits before a background run deletes it. */
  gcGraceSeconds: number;
  /**
   * Seconds a write's lease (an upload's too) lives unless renewed; renewed every quarter of
   * it. On a shared catalog it is how long another node takes to count a dead node's uploads
   * abandoned (they are queued again within half of it more).
   */
  leaseSeconds: number;
  /**
   * Chunk locations each process remembers where lookups cost a round trip (a postgres
   * catalog), so that images it wrote or served are read without asking the database; 0: none.
   */
  locationCacheEntries: number;
  /** Seconds between background scrubs of every chunk (0: none); and their read rate. */
  scrubIntervalSeconds: number;
  scrubBytesPerSecond: number;
  /** How callers are authenticated (docs/security.md). */
  auth: AuthConfig;
  /** Per-project quotas (Glance's unified limits); undefined: none. */
  quotas: QuotaConfig | undefined;
  /** Glance's image_member_quota (negative: no limit). */
  imageMemberQuota: number;
  /** Uploads write every chunk as if new: their timing reveals nothing of others' data. */
  dedupWriteThrough: boolean;
  /** Glance's enabled_import_methods. */
  importMethods: ImportMethod[];
  /** Glance's import_filtering_opts for web-download. */
  importFilter: ImportFilter;
  /** web-download: longest silence from the source, and most redirects followed. */
  webDownloadIdleTimeoutSeconds: number;
  webDownloadMaxRedirects: number;
  /** Import plugins: image conversion to one output format; properties injected. */
  importPlugins: ImportPlugins;
  /** The node-local cache of chunks read from remote stores (docs/operations.md); undefined: none. */
  cache: CacheConfig | undefined;
  /** Where the catalog is: LMDB under the data directory (the default), or a shared PostgreSQL. */
  catalog: CatalogConfig;
}

export interface CacheConfig {
  /** Its directory (default DATA/cache; relative paths are to the data directory). */
  path?: string;
  /** The most bytes of chunks it holds. */
  maxBytes: number;
}

export interface ImportPlugins {
  imageConversion?: { outputFormat: string };
  injectMetadata?: { properties: Record<string, string>; ignoreUserRoles?: string[] };
}

export const DEFAULT_CONFIG: ServerConfig = {
  host: "127.0.0.1",
  port: 9292,
  publicEndpoint: undefined,
  proxyHeadersFrom: [],
  metricsScrapers: [],
  dataDir: "./data",
  workers: availableParallelism(),
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
  leaseSeconds: 300,
  locationCacheEntries: 65_536,
  scrubIntervalSeconds: 7 * 24 * 3600,
  scrubBytesPerSecond: 50_000_000,
  auth: { mode: "none" },
  quotas: undefined,
  importMethods: [...IMPORT_METHODS],
  importFilter: DEFAULT_IMPORT_FILTER,
  webDownloadIdleTimeoutSeconds: 60,
  webDownloadMaxRedirects: 5,
  importPlugins: {},
  cache: undefined,
  catalog: { type: "lmdb" },
};

/** A configuration that cannot work; the CLI reports it as a usage error (exit status 2). */
export class ConfigError extends Error {}
