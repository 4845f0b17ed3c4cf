/** The chunk cache a configuration asks for (its `cache` key), or none. */
import { resolve } from "node:path";
import { ChunkCache } from "./chunk-cache.js";

/** Opens the cache `cfg` describes (its path relative to the data directory, DATA/cache by default). */
export function openChunkCache(
  cfg: { path?: string; maxBytes: number } | undefined,
  dataDir: string,
): Promise<ChunkCache | undefined> {
  if (!cfg) return Promise.resolve(undefined);
  return ChunkCache.open({ path: resolve(dataDir, cfg.path ?? "cache"), maxBytes: cfg.maxBytes });
}
