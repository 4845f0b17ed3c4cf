/**
 * Retries around any object backend: only BackendUnavailableError (network failures, 5xx,
 * throttling) is retried, with exponential backoff and full jitter, up to a bounded number
 * of attempts; a missing object, a short read or a bad name fails at once. Every operation of
 * the backend contract is idempotent (puts rewrite identical bytes), so a retry after a
 * failure whose effect is unknown is safe. A listing is retried only until its first entry
 * has been handed out.
 */
import { BackendUnavailableError } from "../errors.js";
import type { ObjectBackend, ObjectInfo } from "./backend.js";

export interface RetryOptions {
  /** Tries per operation, the first included. */
  attempts: number;
  /** The first backoff's upper bound; each later one doubles, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: 5, baseDelayMs: 100, maxDelayMs: 5000 };

export class RetryingBackend implements ObjectBackend {
  /** Retries made so far (attempts beyond the first), for metrics and tests. */
  retries = 0;

  constructor(
    readonly inner: ObjectBackend,
    private readonly options: RetryOptions = DEFAULT_RETRY,
  ) {}

  private async retry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!(e instanceof BackendUnavailableError) || attempt >= this.options.attempts) throw e;
        await this.backoff(attempt);
      }
    }
  }

  /** Waits before try `attempt + 1`: full jitter under a bound that doubles up to maxDelayMs. */
  private backoff(attempt: number): Promise<void> {
    this.retries++;
    const cap = Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** (attempt - 1));
    return new Promise((r) => setTimeout(r, Math.random() * cap));
  }

  put(name: string, parts: readonly Uint8Array[]): Promise<void> {
    return this.retry(() => this.inner.put(name, parts));
  }

  get(name: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    return this.retry(() => this.inner.get(name, offset, length, into));
  }

  stat(name: string): Promise<ObjectInfo | undefined> {
    return this.retry(() => this.inner.stat(name));
  }

  delete(name: string): Promise<void> {
    return this.retry(() => this.inner.delete(name));
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for (let attempt = 1; ; attempt++) {
      let yielded = false;
      try {
        for await (const o of this.inner.list(prefix)) {
          yielded = true;
          yield o;
        }
        return;
      } catch (e) {
        if (yielded || !(e instanceof BackendUnavailableError) || attempt >= this.options.attempts) throw e;
        await this.backoff(attempt);
      }
    }
  }

  sweepLeftovers(olderThanMs: number): Promise<number> {
    return this.inner.sweepLeftovers?.(olderThanMs) ?? Promise.resolve(0);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
