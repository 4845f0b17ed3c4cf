/**
 * The wrappers around a backend, on real servers: retries ride out an S3 server that goes
 * away and comes back, and only for failures a retry can cure; the concurrency bound holds.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BackendUnavailableError, NotFoundError } from "../../src/errors.js";
import type { ObjectBackend, ObjectInfo } from "../../src/store/backend.js";
import { FsBackend } from "../../src/store/fs-backend.js";
import { LimitedBackend } from "../../src/store/limited-backend.js";
import { RetryingBackend } from "../../src/store/retrying-backend.js";
import { S3Backend } from "../../src/store/s3-backend.js";
import { prng } from "../helpers/data.js";
import { type S3rver, startS3rver } from "../helpers/s3.js";
import { waitFor } from "../helpers/wait.js";

let s3: S3rver;
beforeAll(async () => {
  s3 = await startS3rver();
});
afterAll(async () => {
  await s3.stop();
});

describe("RetryingBackend on s3rver", () => {
  it("rides out a server that dies and comes back during a read", async () => {
    // Attempts for ~10 s (jittered backoff, 100 ms on average): restarting s3rver, a Node
    // process, takes well under a second, but seconds on a busy machine.
    const backend = new RetryingBackend(new S3Backend({ ...s3.options, prefix: "r1/" }), {
      attempts: 100,
      baseDelayMs: 50,
      maxDelayMs: 200,
    });
    const data = Buffer.from(prng(1, 300_000));
    await backend.put("packs/00/p", [data]);
    s3.kill();
    const read = backend.get("packs/00/p", 1000, 200_000);
    // The read has met the dead server (not a fixed wait, which could end before it had).
    await waitFor("the read to fail once", () => backend.retries > 0, { everyMs: 5 });
    await s3.restart();
    expect((await read).equals(data.subarray(1000, 201_000))).toBe(true);
    expect(backend.retries).toBeGreaterThan(0);
    await backend.close();
  });

  it("gives up after its attempts with BackendUnavailableError, and never retries a missing object", async () => {
    const backend = new RetryingBackend(new S3Backend({ ...s3.options, prefix: "r2/" }), {
      attempts: 3,
      baseDelayMs: 10,
      maxDelayMs: 20,
    });
    await expect(backend.get("nothing", 0, 1)).rejects.toBeInstanceOf(NotFoundError);
    expect(backend.retries).toBe(0);
    s3.kill();
    await expect(backend.get("nothing", 0, 1)).rejects.toBeInstanceOf(BackendUnavailableError);
    expect(backend.retries).toBe(2);
    await s3.restart();
    await backend.close();
  });
});

/** Counts the reads in flight on a real backend. */
class Gauge implements ObjectBackend {
  now = 0;
  peak = 0;
  constructor(private readonly inner: ObjectBackend) {}
  private async track<T>(p: () => Promise<T>): Promise<T> {
    this.peak = Math.max(this.peak, ++this.now);
    try {
      await new Promise((r) => setTimeout(r, 5));
      return await p();
    } finally {
      this.now--;
    }
  }
  put(n: string, parts: readonly Uint8Array[]) {
    return this.track(() => this.inner.put(n, parts));
  }
  get(n: string, o: number, l: number) {
    return this.track(() => this.inner.get(n, o, l));
  }
  stat(n: string): Promise<ObjectInfo | undefined> {
    return this.track(() => this.inner.stat(n));
  }
  delete(n: string) {
    return this.track(() => this.inner.delete(n));
  }
  list(p: string) {
    return this.inner.list(p);
  }
  close() {
    return this.inner.close();
  }
}

describe("LimitedBackend", () => {
  it("keeps reads and writes in flight within their bounds, and every request completes", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tessera-limit-"));
    const gauge = new Gauge(new FsBackend(dir, { durable: false }));
    const limited = new LimitedBackend(gauge, { puts: 2, gets: 3 });
    try {
      await Promise.all(Array.from({ length: 10 }, (_, i) => limited.put(`o/${i}`, [prng(i, 100)])));
      expect(gauge.peak).toBe(2);
      gauge.peak = 0;
      const got = await Promise.all(Array.from({ length: 30 }, (_, i) => limited.get(`o/${i % 10}`, 0, 100)));
      expect(gauge.peak).toBe(3);
      expect(got.every((b, i) => b.equals(Buffer.from(prng(i % 10, 100))))).toBe(true);
    } finally {
      await limited.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
