/**
 * Counts what passes through to a backend: requests by kind and bytes each way. A metrics
 * wrapper for benchmarks and operators' figures (S3 requests per GiB); it changes nothing.
 */
import type { ObjectBackend, ObjectInfo } from "./backend.js";

export interface BackendCounts {
  puts: number;
  gets: number;
  stats: number;
  deletes: number;
  lists: number;
  bytesPut: number;
  bytesGot: number;
}

export class CountingBackend implements ObjectBackend {
  readonly counts: BackendCounts = {
    puts: 0,
    gets: 0,
    stats: 0,
    deletes: 0,
    lists: 0,
    bytesPut: 0,
    bytesGot: 0,
  };

  constructor(readonly inner: ObjectBackend) {}

  put(name: string, parts: readonly Uint8Array[]): Promise<void> {
    this.counts.puts++;
    for (const p of parts) this.counts.bytesPut += p.length;
    return this.inner.put(name, parts);
  }

  async get(name: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.counts.gets++;
    const b = await this.inner.get(name, offset, length, into);
    this.counts.bytesGot += b.length;
    return b;
  }

  stat(name: string): Promise<ObjectInfo | undefined> {
    this.counts.stats++;
    return this.inner.stat(name);
  }

  delete(name: string): Promise<void> {
    this.counts.deletes++;
    return this.inner.delete(name);
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    this.counts.lists++;
    return this.inner.list(prefix);
  }

  sweepLeftovers(olderThanMs: number): Promise<number> {
    return this.inner.sweepLeftovers?.(olderThanMs) ?? Promise.resolve(0);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
