/**
 * The chunk cache's Prometheus metrics, in the server's registry (metrics.ts): hits and
 * misses (in chunks), bytes served from the cache and filled into it, evictions, chunks
 * dropped for bad bytes (counters of this process, summed over a cluster's processes), and the
 * bytes the cache holds (the node's figure, the same in every process: not summed).
 */
import { Counter, Gauge, type Registry } from "prom-client";
import type { CacheCounts, ChunkCache } from "../cache/chunk-cache.js";

export function registerCacheMetrics(registry: Registry, cache: ChunkCache): void {
  // Counters that follow the cache's own counts, caught up whenever they are collected.
  const follow = (name: string, help: string, pick: (c: CacheCounts) => number) => {
    let seen = 0;
    return new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const now = pick(cache.counts);
        if (now > seen) this.inc(now - seen);
        seen = now;
      },
    });
  };
  follow("tessera_cache_hits_total", "Chunks read from the node's chunk cache", (c) => c.hits);
  follow("tessera_cache_misses_total", "Chunks of remote stores not found in the cache", (c) => c.misses);
  follow("tessera_cache_served_bytes_total", "Stored bytes read from the cache", (c) => c.bytesServed);
  follow("tessera_cache_filled_bytes_total", "Stored bytes admitted to the cache", (c) => c.bytesFilled);
  follow("tessera_cache_evictions_total", "Chunks evicted to stay within maxBytes", (c) => c.evictions);
  follow(
    "tessera_cache_dropped_total",
    "Cached chunks dropped because they failed a check",
    (c) => c.dropped,
  );
  new Gauge({
    name: "tessera_cache_bytes",
    help: "Stored bytes the node's chunk cache holds",
    registers: [registry],
    aggregator: "max",
    collect() {
      this.set(cache.totalBytes());
    },
  });
  new Gauge({
    name: "tessera_cache_max_bytes",
    help: "The chunk cache's bound (cache.maxBytes)",
    registers: [registry],
    aggregator: "max",
    collect() {
      this.set(cache.maxBytes);
    },
  });
}
