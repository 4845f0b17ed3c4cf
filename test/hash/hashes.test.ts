import { createHash } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { chunkId, chunkIdWasm } from "../../src/hash/chunk-id.js";
import { chunkSum, chunkSumWasm } from "../../src/hash/chunk-sum.js";
import { HasherPool } from "../../src/hash/whole-image-hasher.js";
import { prng, randomSplits } from "../helpers/data.js";

describe("chunk ids", () => {
  it("are BLAKE3-256 (official test vector for 'abc')", () => {
    expect(chunkId(Buffer.from("abc")).toString("hex")).toBe(
      "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
    );
  });

  it("are the same from the native and the WebAssembly implementation", () => {
    for (const n of [0, 1, 1024, 1025, 65536, 300_000]) {
      const d = prng(n + 7, n);
      expect(chunkId(d).equals(chunkIdWasm(d))).toBe(true);
    }
  });
});

describe("chunk sums", () => {
  it("are XXH64 with seed 0 (the reference value for 'abc')", () => {
    expect(chunkSum(Buffer.from("abc"))).toBe(0x44bc2cf5ad770999n);
  });

  it("are the same from the native and the WebAssembly implementation", () => {
    for (const n of [0, 1, 31, 32, 1024, 65536, 300_000]) {
      const d = prng(n + 9, n);
      expect(chunkSum(d)).toBe(chunkSumWasm(d));
    }
  });
});

describe("whole-image hasher", () => {
  const pool = new HasherPool(["md5", "sha512"]);
  afterAll(() => pool.close());

  it("matches node:crypto over a stream of odd-sized pieces, and again when reused", async () => {
    const data = prng(5, 20 * 1024 * 1024 + 333);
    const md5 = createHash("md5").update(data).digest("hex");
    const sha512 = createHash("sha512").update(data).digest("hex");
    for (const seed of [1, 2]) {
      const h = pool.acquire();
      for (const p of randomSplits(data, seed, 3_000_000)) await h.update(p);
      expect(await h.digest()).toEqual({ md5, sha512 });
      pool.release(h, true);
    }
  });

  it("hashes an empty stream", async () => {
    const h = pool.acquire();
    expect((await h.digest()).md5).toBe("d41d8cd98f00b204e9800998ecf8427e");
    pool.release(h, true);
  });

  it("hashes 60 streams at once on a fixed number of threads, whatever their number", async () => {
    const many = new HasherPool(["md5", "sha512"], { lanes: 1 });
    try {
      const datas = Array.from({ length: 60 }, (_, i) => prng(100 + i, 5 * 1024 * 1024 + i));
      const hashers = datas.map(() => many.acquire());
      const results = await Promise.all(
        hashers.map(async (h, i) => {
          for (const p of randomSplits(datas[i] as Uint8Array, i, 1_000_000)) await h.update(p);
          return h.digest();
        }),
      );
      expect(many.threads).toBe(2);
      results.forEach((r, i) => {
        expect(r.md5).toBe(
          createHash("md5")
            .update(datas[i] as Uint8Array)
            .digest("hex"),
        );
      });
      for (const h of hashers) many.release(h, true);
    } finally {
      await many.close();
    }
  });

  it("lets other streams through while streams that stopped mid-slot hold nothing, and drops abandoned ones", async () => {
    const small = new HasherPool(["md5"], { lanes: 1 });
    try {
      // Twenty streams send a little and stop: each has a part-filled slot (more than the pool has).
      const stalled = Array.from({ length: 20 }, () => small.acquire());
      for (const h of stalled) await h.update(prng(1, 1000));
      const data = prng(9, 40 * 1024 * 1024);
      const h = small.acquire();
      for (const p of randomSplits(data, 3, 2_000_000)) await h.update(p);
      expect((await h.digest()).md5).toBe(createHash("md5").update(data).digest("hex"));
      small.release(h, true);
      for (const s of stalled) small.release(s, false);
      const again = small.acquire();
      await again.update(Buffer.from("abc"));
      expect((await again.digest()).md5).toBe("900150983cd24fb0d6963f7d28e17f72");
      small.release(again, true);
    } finally {
      await small.close();
    }
  });

  it("a hashing worker that dies fails only the streams of its lane, and later streams are right", async () => {
    const pool = new HasherPool(["md5", "sha512"], { lanes: 1 });
    try {
      const doomed = pool.acquire();
      await doomed.update(prng(1, 6 * 1024 * 1024)); // a slot posted, another part-filled
      // Kill a worker as a bug in it would: a message about a slot it was never given.
      const lanes = (pool as unknown as { lanes: { workers: { postMessage(m: unknown): void }[] }[] }).lanes;
      lanes[0]?.workers[0]?.postMessage({ t: "data", s: doomed.id, i: 999, len: 1 });
      await expect(
        (async () => {
          for (let i = 0; i < 50; i++) {
            await doomed.update(prng(2, 1024 * 1024));
            await new Promise((r) => setTimeout(r, 10));
          }
          return doomed.digest();
        })(),
      ).rejects.toThrow();
      pool.release(doomed, false);
      // Every slot came back: a stream longer than all of them hashes right on a new lane.
      const data = prng(3, 48 * 1024 * 1024);
      const h = pool.acquire();
      for (const p of randomSplits(data, 4, 3_000_000)) await h.update(p);
      expect((await h.digest()).md5).toBe(createHash("md5").update(data).digest("hex"));
      pool.release(h, true);
    } finally {
      await pool.close();
    }
  });

  it("refuses an algorithm node:crypto does not have", () => {
    expect(() => new HasherPool(["nope"])).toThrow(RangeError);
  });
});

describe("chunk verifier", () => {
  it("accepts matching chunks and rejects a flipped byte, on its workers and inline", async () => {
    const { ChunkVerifier } = await import("../../src/hash/chunk-verifier.js");
    const v = new ChunkVerifier(2);
    try {
      for (let round = 0; round < 4; round++) {
        const data = Buffer.from(prng(round, 900_000));
        const spans = [
          { offset: 0, length: 100_000, id: chunkId(data.subarray(0, 100_000)) },
          { offset: 100_000, length: 800_000, id: chunkId(data.subarray(100_000)) },
        ];
        const owned = Buffer.from(data); // owns its ArrayBuffer: goes to a worker
        expect((await v.verify(owned, spans)).equals(data)).toBe(true);
        const view = Buffer.concat([Buffer.alloc(1), data]).subarray(1); // a view: verified inline
        expect((await v.verify(view, spans)).equals(data)).toBe(true);
        const bad = Buffer.from(data);
        bad[150_000] ^= 1;
        const badView = Buffer.concat([Buffer.alloc(1), bad]).subarray(1);
        await expect(v.verify(bad, spans)).rejects.toThrow(spans[1].id.toString("hex")); // detaches `bad`
        await expect(v.verify(badView, spans)).rejects.toThrow(/does not match/);
      }
    } finally {
      await v.close();
    }
  });
});
