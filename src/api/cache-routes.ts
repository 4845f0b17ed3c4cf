/**
 * Glance's cache management API (Images API v2.14–v2.16, and v2.18's clean and prune) over the
 * node-local chunk cache (src/cache): GET and DELETE /v2/cache, PUT and DELETE
 * /v2/cache/{image_id}, POST /v2/cache/clean and /v2/cache/prune. Admins only, as Glance's
 * default policies (cache_list, cache_image, cache_delete, cache_clean, cache_prune are all
 * role:admin). The order of the checks is Glance's (glance/api/v2/cached_images.py): the
 * image is looked up before the policy for PUT and DELETE of one image, the policy first
 * otherwise; without a cache configured an admin gets Glance's 404 "Caching via API is not
 * supported at this site."
 *
 * An image is cached when its data was read whole through the cache (a download, or a
 * prefetch) and every chunk of it is still there; docs/api.md says more.
 */
import { Hono } from "hono";
import type { ChunkCache } from "../cache/chunk-cache.js";
import type { Prefetcher } from "../cache/prefetcher.js";
import type { ImageRecord } from "../catalog/image-records.js";
import { cachesStore, objectCached, objectChunkIds } from "../engine/read-cache.js";
import { NotFoundError } from "../errors.js";
import type { ImageService } from "../images/images.js";
import type { AccessPolicy } from "./access.js";
import type { Env } from "./env.js";
import { HttpError } from "./errors.js";

/** The cache and its prefetcher, as the API serves them. */
export interface CacheApiParts {
  cache: ChunkCache;
  prefetcher?: Prefetcher;
}

const CLEAR_TARGET = "x-image-cache-clear-target";

/** webob's HTTPForbidden() without an explanation, which is what Glance raises here. */
const denied = () => new HttpError(403, "Access was denied to this resource.");

function requireCacheAdmin(c: { get(k: "auth"): { isAdmin: boolean } }): void {
  if (!c.get("auth").isAdmin) throw denied();
}

function supported(parts: CacheApiParts | undefined): CacheApiParts {
  if (!parts) throw new HttpError(404, "Caching via API is not supported at this site.");
  return parts;
}

export function cacheRoutes(
  images: ImageService,
  policy: AccessPolicy,
  parts: CacheApiParts | undefined,
): Hono<Env> {
  const app = new Hono<Env>();
  const engine = images.engine;

  /** The image as the caller sees it, or undefined. */
  const lookup = async (c: { get(k: "auth"): Parameters<AccessPolicy["to"]>[0] }, id: string) => {
    try {
      return await images.get(id, policy.to(c.get("auth"), "get_image"));
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
  };
  const notFound = (id: string) => new HttpError(404, `Image ${id} not found.`);

  app.get("/v2/cache", async (c) => {
    requireCacheAdmin(c);
    const { cache } = supported(parts);
    const cached = [];
    for (const { name, entry } of cache.objects.list()) {
      if (!(await objectCached(engine, cache, entry.object).catch(() => false))) continue;
      cached.push({
        image_id: name,
        hits: entry.hits,
        last_accessed: entry.lastAccessed,
        last_modified: entry.lastModified,
        size: entry.size,
      });
    }
    return c.json({ cached_images: cached, queued_images: cache.objects.queued() });
  });

  app.delete("/v2/cache", async (c) => {
    requireCacheAdmin(c);
    const { cache } = supported(parts);
    const target = (c.req.header(CLEAR_TARGET) ?? "").toLowerCase();
    if (!["", "cache", "queue"].includes(target)) {
      throw new HttpError(
        400,
        "If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string.",
      );
    }
    if (target !== "queue") await cache.clear();
    if (target !== "cache") await cache.objects.clearQueue();
    return c.body(null, 204);
  });

  app.put("/v2/cache/:id", async (c) => {
    const id = c.req.param("id");
    const image = await lookup(c, id);
    if (!image) throw notFound(id);
    requireCacheAdmin(c);
    const p = supported(parts);
    if (image.status !== "active") {
      throw new HttpError(400, "Only images with status active can be targeted for queueing");
    }
    await p.cache.objects.enqueue(id, p.cache.now());
    p.prefetcher?.kick();
    return c.body(null, 202);
  });

  app.delete("/v2/cache/:id", async (c) => {
    const id = c.req.param("id");
    const image = await lookup(c, id);
    const known = parts && (parts.cache.objects.get(id) || parts.cache.objects.queued().includes(id));
    if (!image && !known) throw notFound(id);
    requireCacheAdmin(c);
    const { cache } = supported(parts);
    await forget(cache, id);
    await cache.objects.dequeue(id);
    return c.body(null, 204);
  });

  app.post("/v2/cache/clean", async (c) => {
    requireCacheAdmin(c);
    const { cache } = supported(parts);
    await cache.clean();
    // Entries whose chunks were partly evicted are no longer cached images.
    for (const { name, entry } of cache.objects.list()) {
      if (!(await objectCached(engine, cache, entry.object).catch(() => false)))
        await cache.objects.remove(name);
    }
    return c.body(null, 200);
  });

  app.post("/v2/cache/prune", async (c) => {
    requireCacheAdmin(c);
    const { cache } = supported(parts);
    const r = await cache.prune();
    return c.json({ total_files_pruned: r.count, total_bytes_pruned: r.bytes });
  });

  /** Drops an image's entry, and evicts the slabs of its chunks no other cached image lists. */
  async function forget(cache: ChunkCache, id: string): Promise<void> {
    const entry = cache.objects.get(id);
    await cache.objects.remove(id);
    if (!entry) return;
    const kept = new Set<string>();
    for (const other of cache.objects.list()) {
      for (const c of await objectChunkIds(engine, other.entry.object).catch(() => []))
        kept.add(c.toString("hex"));
    }
    const ids = await objectChunkIds(engine, entry.object).catch(() => []);
    await cache.evictHolding(ids.filter((c) => !kept.has(c.toString("hex"))));
  }

  return app;
}

/**
 * What a download tells the cache: call `begin` before reading, and `done` once the client
 * has every byte. A whole read makes the image a cached one; a read of a cached image is a
 * hit. Only images with data in a remote store are tracked.
 */
export function cacheReads(images: ImageService, parts: CacheApiParts | undefined) {
  return async (image: ImageRecord, start: number, end: number): Promise<(() => void) | undefined> => {
    const object = image.object;
    if (!parts || !object || image.size === null) return undefined;
    const { cache } = parts;
    const engine = images.engine;
    const remote = image.stores.some((name) => {
      const store = engine.stores.get(name);
      return store !== undefined && cachesStore(store);
    });
    if (!remote) return undefined;
    const entry = cache.objects.get(image.id);
    const cachedBefore =
      entry?.object === object && (await objectCached(engine, cache, object).catch(() => false));
    const whole = start === 0 && end === image.size;
    const size = image.size;
    return () => {
      void cache.objects
        .noteRead(image.id, object, size, { whole, cachedBefore }, cache.now())
        .catch(() => {});
    };
  };
}

export type CacheReads = ReturnType<typeof cacheReads>;
