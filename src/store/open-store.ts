/**
 * A store's configuration and the backend it opens: the filesystem backend, or the S3 or Swift
 * backend inside its wrappers (retries outside, the concurrency bound inside, so that a
 * request waiting out a backoff gives its slot to another).
 */
import { join } from "node:path";
import type { ObjectBackend } from "./backend.js";
import { FsBackend } from "./fs-backend.js";
import { LimitedBackend } from "./limited-backend.js";
import { DEFAULT_RETRY, RetryingBackend } from "./retrying-backend.js";
import type { S3BackendOptions } from "./s3-backend.js";
import type { SwiftBackendOptions } from "./swift-backend.js";

export interface FilesystemStoreConfig {
  type: "filesystem";
  /** Directory of the objects (default DATA_DIR/objects for the store "local", else DATA_DIR/stores/NAME). */
  path?: string;
  /** Shown in the list of stores (GET /v2/info/stores). */
  description?: string;
  /** New chunks compressed with zstd or stored as they are (default "none": local reads stay fast). */
  compression?: "zstd" | "none";
  /** What a read checks of each chunk (default "fast"; ReadCheck). */
  readCheck?: ReadCheck;
  /**
   * Write packs with O_DIRECT (default false). It saves the kernel's copy per byte on ingest
   * (direct-write.ts), but then a new image's first downloads read from the device instead of
   * the page cache: measured here, 1.2–1.6 GB/s instead of 1.7–2.2 right after an upload, for
   * no gain in HTTP upload speed (docs/benchmarks.md). A boot storm follows a new image.
   */
  directWrites?: boolean;
}

/**
 * What a read checks of each chunk before it is handed out: its fast checksum ("fast", from
 * the catalog's trusted record: catches what a disk or a network corrupts), its BLAKE3 id
 * ("full": also what someone with write access to the store forges), or nothing ("off").
 */
export type ReadCheck = "fast" | "full" | "off";

/** What a remote object store (S3, Swift) takes beyond its backend's own options. */
interface RemoteStoreSettings {
  /** Shown in the list of stores (GET /v2/info/stores). */
  description?: string;
  /** Writes and reads in flight at once against this store (default 8 and 16). */
  maxPuts?: number;
  maxGets?: number;
  /** Tries per request for transient failures (default 5). */
  attempts?: number;
  /**
   * Bytes of ranged GETs one download keeps in flight (default 32 MiB: eight 4 MiB GETs),
   * since each GET waits a round trip the filesystem does not.
   */
  readAheadBytes?: number;
  /**
   * Target pack size (default 32 MiB): half the objects and PUTs per GiB of the filesystem's
   * 16 MiB, where every request has a cost and a round trip.
   */
  packSize?: number;
  /** New chunks compressed with zstd or stored as they are (default "zstd": bytes cost here). */
  compression?: "zstd" | "none";
  /**
   * What a read checks of each chunk (default "full": whoever runs the object store could
   * forge bytes that match a fast checksum, not ones that match a BLAKE3 id).
   */
  readCheck?: ReadCheck;
}

export interface S3StoreConfig extends S3BackendOptions, RemoteStoreSettings {
  type: "s3";
}

/** An OpenStack Swift store (native API), with the same engine settings as S3. */
export interface SwiftStoreConfig extends SwiftBackendOptions, RemoteStoreSettings {
  type: "swift";
}

export const S3_READ_AHEAD = 32 * 1024 * 1024;
export const S3_PACK_SIZE = 32 * 1024 * 1024;

export type StoreConfig = FilesystemStoreConfig | S3StoreConfig | SwiftStoreConfig;

/**
 * The engine settings a store implies unless given otherwise. S3: 32 MiB packs, 32 MiB of
 * read-ahead, zstd (bytes stored and moved cost money there, and requests wait on the network
 * anyway). Filesystem: the engine's own packs and read-ahead, no compression (local downloads
 * of compressible data run 3–4× slower decompressing; docs/benchmarks.md). Reads check the
 * fast checksum on the filesystem, BLAKE3 on remote stores (ReadCheck).
 */
export function storeEngineDefaults(cfg: StoreConfig): {
  readAheadBytes?: number;
  packSize?: number;
  compression: "zstd" | "none";
  readCheck: ReadCheck;
} {
  if (cfg.type === "filesystem") {
    return { compression: cfg.compression ?? "none", readCheck: cfg.readCheck ?? "fast" };
  }
  return {
    readAheadBytes: cfg.readAheadBytes ?? S3_READ_AHEAD,
    packSize: cfg.packSize ?? S3_PACK_SIZE,
    compression: cfg.compression ?? "zstd",
    readCheck: cfg.readCheck ?? "full",
  };
}

export const DEFAULT_STORES: Record<string, StoreConfig> = { local: { type: "filesystem" } };

/** Where a filesystem store keeps its objects. */
export function filesystemStorePath(cfg: FilesystemStoreConfig, dataDir: string, name = "local"): string {
  return cfg.path ?? (name === "local" ? join(dataDir, "objects") : join(dataDir, "stores", name));
}

/**
 * The backend of store `name` (default "local"). `innermost` may wrap the backend itself,
 * under the retries and limits (to count requests). The AWS SDK is loaded only for an S3
 * store: a filesystem-only server does not pay its start-up time and memory.
 */
export async function openBackend(
  cfg: StoreConfig,
  dataDir: string,
  durable: boolean,
  o: { name?: string; innermost?: (b: ObjectBackend) => ObjectBackend } = {},
): Promise<ObjectBackend> {
  const innermost = o.innermost ?? ((b) => b);
  if (cfg.type === "filesystem")
    return innermost(
      new FsBackend(filesystemStorePath(cfg, dataDir, o.name), {
        durable,
        directIo: cfg.directWrites,
      }),
    );
  // The backends read their own keys and ignore the store's others.
  const backend =
    cfg.type === "s3"
      ? new (await import("./s3-backend.js")).S3Backend(cfg)
      : new (await import("./swift-backend.js")).SwiftBackend(cfg);
  return new RetryingBackend(
    new LimitedBackend(innermost(backend), { puts: cfg.maxPuts ?? 8, gets: cfg.maxGets ?? 16 }),
    {
      ...DEFAULT_RETRY,
      attempts: cfg.attempts ?? DEFAULT_RETRY.attempts,
    },
  );
}
