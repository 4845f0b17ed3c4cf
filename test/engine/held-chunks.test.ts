/**
 * HeldChunks: the copies ingest keeps of chunks while their batch's lookup is in flight. A
 * copy must stay intact while its batch is held, whatever the chunker's window and later
 * batches do, and slabs come back for reuse only when released.
 */
import { describe, expect, it } from "vitest";
import { HeldChunks } from "../../src/engine/held-chunks.js";
import { BufferPool } from "../../src/store/buffer-pool.js";
import { prng } from "../helpers/data.js";

describe("HeldChunks", () => {
  it("keeps each copy intact after the chunker's window is overwritten", () => {
    const held = new HeldChunks(new BufferPool(1024, 4, (n) => Buffer.alloc(n)));
    const window = Buffer.from(prng(1, 300));
    const a = held.copy(window.subarray(0, 100));
    const b = held.copy(window.subarray(100, 300));
    const expected = Buffer.from(window);
    window.fill(0);
    expect(Buffer.concat([a, b]).equals(expected)).toBe(true);
  });

  it("starts a new slab when a copy does not fit the rest of the current one", () => {
    const pool = new BufferPool(1024, 4, (n) => Buffer.alloc(n));
    const held = new HeldChunks(pool);
    const a = held.copy(prng(2, 700));
    const b = held.copy(prng(3, 700));
    expect(a.buffer).not.toBe(b.buffer);
    expect(held.seal().length).toBe(2);
  });

  it("reuses a slab only once its batch is released, never one still held", () => {
    const pool = new BufferPool(1024, 4, (n) => Buffer.alloc(n));
    const held = new HeldChunks(pool);
    const first = held.copy(prng(4, 500));
    const kept = Buffer.from(first);
    const firstSlabs = held.seal();
    // The next batch, cut while the first is looked up: a slab of its own.
    const second = held.copy(prng(5, 500));
    expect(second.buffer).not.toBe(first.buffer);
    expect(first.equals(kept)).toBe(true);
    const secondSlabs = held.seal();
    held.release(firstSlabs);
    const third = held.copy(prng(6, 500));
    expect(third.buffer).toBe(first.buffer);
    expect(secondSlabs[0]?.buffer).toBe(second.buffer);
  });
});
