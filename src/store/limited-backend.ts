/**
 * Bounded concurrency around any object backend: at most `puts` writes and `gets` reads in
 * flight at once (stat, delete and list count as reads); the rest wait their turn in order.
 * One download's read-ahead and many clients' downloads share the same bound, so an object
 * store sees a steady number of requests instead of a burst per client.
 */
import type { ObjectBackend, ObjectInfo } from "./backend.js";

class Slots {
  private busy = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly size: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.busy >= this.size) await new Promise<void>((r) => this.waiting.push(r));
    else this.busy++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next in line; busy stays the same.
      if (next) next();
      else this.busy--;
    }
  }
}

export interface ConcurrencyLimits {
  puts: number;
  gets: number;
}

export class LimitedBackend implements ObjectBackend {
  private readonly puts: Slots;
  private readonly gets: Slots;

  constructor(
    readonly inner: ObjectBackend,
    limits: ConcurrencyLimits,
  ) {
    this.puts = new Slots(Math.max(1, limits.puts));
    this.gets = new Slots(Math.max(1, limits.gets));
  }

  put(name: string, parts: readonly Uint8Array[]): Promise<void> {
    return this.puts.run(() => this.inner.put(name, parts));
  }

  get(name: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    return this.gets.run(() => this.inner.get(name, offset, length, into));
  }

  stat(name: string): Promise<ObjectInfo | undefined> {
    return this.gets.run(() => this.inner.stat(name));
  }

  delete(name: string): Promise<void> {
    return this.gets.run(() => this.inner.delete(name));
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    // Pages are fetched lazily by the consumer; a listing holds no slot between them.
    return this.inner.list(prefix);
  }

  sweepLeftovers(olderThanMs: number): Promise<number> {
    return this.inner.sweepLeftovers?.(olderThanMs) ?? Promise.resolve(0);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
