/**
 * The background prefetch of queued images (Glance's cache prefetcher): each server process
 * runs one, claiming the oldest queued name in the cache's index (so that several processes
 * of a node share the queue and never fetch the same name at once), reading its data whole
 * through the cache, then recording it as cached and taking it off the queue. One image at a
 * time per process; a process that dies mid-way leaves a claim that lapses.
 */
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { ChunkCache } from "./chunk-cache.js";

export interface PrefetchSource {
  /** The data (object id, hex) and size of `name`, when it exists, is active and has data. */
  resolve(name: string): Promise<{ object: string; size: number } | undefined>;
  /** The object's bytes, read whole through the cache. */
  read(object: string): AsyncIterable<unknown>;
}

export interface Prefetcher {
  /** Looks at the queue now (after a PUT in this process) instead of at the next interval. */
  kick(): void;
  /** Stops, cutting off a prefetch under way (its name stays queued). */
  stop(): Promise<void>;
}

export interface PrefetchOptions {
  /** How often an idle prefetcher looks at the queue (default 5 s): other processes' PUTs. */
  intervalMs?: number;
  /** How long a claim holds before another process may take the name over (default 10 min). */
  claimMs?: number;
  log?: Logger;
}

export function startPrefetcher(
  cache: ChunkCache,
  source: PrefetchSource,
  o: PrefetchOptions = {},
): Prefetcher {
  const by = `${hostname()}:${process.pid}`;
  const intervalMs = o.intervalMs ?? 5000;
  const claimMs = o.claimMs ?? 600_000;
  let stopped = false;
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;

  const nap = () =>
    new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, intervalMs);
      timer.unref();
    }).finally(() => {
      wake = undefined;
      if (timer) clearTimeout(timer);
    });

  const one = async (name: string): Promise<void> => {
    const found = await source.resolve(name);
    if (found) {
      for await (const _ of source.read(found.object)) {
        if (stopped) return; // left queued: its claim lapses and someone takes it again
      }
      await cache.objects.noteRead(
        name,
        found.object,
        found.size,
        { whole: true, cachedBefore: false },
        cache.now(),
      );
    }
    await cache.objects.dequeue(name);
  };

  const loop = async () => {
    while (!stopped) {
      let name: string | undefined;
      try {
        name = await cache.objects.claimNext(by, claimMs, cache.now());
        if (name !== undefined) await one(name);
      } catch (err) {
        o.log?.warn({ image: name, err: String(err) }, "image cache prefetch failed");
        name = undefined; // wait before the next try: the store may be down
      }
      if (name === undefined && !stopped) await nap();
    }
  };
  const running = loop();

  return {
    kick: () => wake?.(),
    stop: async () => {
      stopped = true;
      wake?.();
      await running;
    },
  };
}
