import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CorruptDataError, InvalidNameError, NotFoundError } from "../../src/errors.js";
import type { ObjectBackend } from "../../src/store/backend.js";
import { prng } from "../helpers/data.js";

/**
 * The contract every object backend must meet (see src/store/backend.ts). Each backend's
 * test file calls this with a factory for a fresh, empty backend and its disposal.
 */
export function runBackendConformance(
  name: string,
  make: () => Promise<{ backend: ObjectBackend; dispose: () => Promise<void> }>,
): void {
  describe(`object backend conformance: ${name}`, () => {
    let backend: ObjectBackend;
    let dispose: () => Promise<void>;
    beforeEach(async () => {
      ({ backend, dispose } = await make());
    });
    afterEach(async () => {
      await backend.close();
      await dispose();
    });

    it("stores the concatenation of the parts and reads back any byte range", async () => {
      const a = prng(1, 100_000);
      const b = prng(2, 3);
      await backend.put("packs/ab/obj1", [a, new Uint8Array(0), b]);
      const all = Buffer.concat([a, b]);
      expect((await backend.get("packs/ab/obj1", 0, all.length)).equals(all)).toBe(true);
      expect((await backend.get("packs/ab/obj1", 99_999, 4)).equals(all.subarray(99_999))).toBe(true);
      expect((await backend.get("packs/ab/obj1", 5, 0)).length).toBe(0);
      expect(await backend.stat("packs/ab/obj1")).toEqual({ name: "packs/ab/obj1", size: all.length });
    });

    it("stores an object larger than a multipart upload's part exactly (11 MiB in three parts)", async () => {
      const parts = [prng(11, 4 * 1024 * 1024), prng(12, 7 * 1024 * 1024), prng(13, 1)];
      await backend.put("packs/ee/big", parts);
      const all = Buffer.concat(parts);
      expect((await backend.stat("packs/ee/big"))?.size).toBe(all.length);
      expect((await backend.get("packs/ee/big", 0, all.length)).equals(all)).toBe(true);
      const mid = 5 * 1024 * 1024 - 3;
      expect((await backend.get("packs/ee/big", mid, 10)).equals(all.subarray(mid, mid + 10))).toBe(true);
    });

    it("reads the same bytes whether or not it is handed a buffer to read into", async () => {
      const a = prng(3, 70_000);
      await backend.put("packs/cd/obj2", [a]);
      const into = Buffer.alloc(80_000, 0xee);
      const got = await backend.get("packs/cd/obj2", 1000, 50_000, into);
      expect(got.length).toBe(50_000);
      expect(got.equals(Buffer.from(a.subarray(1000, 51_000)))).toBe(true);
    });

    it("rejects a read past the end as corrupt and a missing object as not found", async () => {
      await backend.put("x", [prng(3, 10)]);
      await expect(backend.get("x", 5, 6)).rejects.toBeInstanceOf(CorruptDataError);
      await expect(backend.get("nope", 0, 1)).rejects.toBeInstanceOf(NotFoundError);
      expect(await backend.stat("nope")).toBeUndefined();
    });

    it("deletes idempotently, and a deleted object is gone even after it was read", async () => {
      await backend.put("d/1", [prng(4, 10)]);
      await backend.get("d/1", 0, 10);
      await backend.delete("d/1");
      await expect(backend.get("d/1", 0, 1)).rejects.toBeInstanceOf(NotFoundError);
      await backend.delete("d/1");
      expect(await backend.stat("d/1")).toBeUndefined();
    });

    it("lists complete objects under a prefix, and only those", async () => {
      await backend.put("packs/00/a", [prng(5, 1)]);
      await backend.put("packs/ff/b", [prng(6, 2)]);
      await backend.put("manifests/00/c", [prng(7, 3)]);
      const listed: { name: string; size: number }[] = [];
      for await (const o of backend.list("packs/")) listed.push(o);
      listed.sort((x, y) => x.name.localeCompare(y.name));
      expect(listed).toEqual([
        { name: "packs/00/a", size: 1 },
        { name: "packs/ff/b", size: 2 },
      ]);
      const none: unknown[] = [];
      for await (const o of backend.list("nothing/")) none.push(o);
      expect(none).toEqual([]);
    });

    it("sweeps nothing that was put, however old, where it sweeps leftovers at all", async () => {
      await backend.put("packs/00/kept", [prng(11, 3)]);
      const removed = (await backend.sweepLeftovers?.(0)) ?? 0;
      expect(removed).toBe(0);
      expect((await backend.stat("packs/00/kept"))?.size).toBe(3);
    });

    it("replaces an object whole when a name is put again, even after it was read", async () => {
      await backend.put("r", [prng(8, 50)]);
      expect((await backend.get("r", 0, 50)).equals(Buffer.from(prng(8, 50)))).toBe(true);
      await backend.put("r", [prng(9, 20)]);
      expect((await backend.get("r", 0, 20)).equals(Buffer.from(prng(9, 20)))).toBe(true);
      expect((await backend.stat("r"))?.size).toBe(20);
    });

    it.each(["", "/abs", "a/../b", "..", "a//b", "a/./b", "a\\b", "a/b/", ".hidden", "a b", "a/\u0000"])(
      "refuses the unsafe name %j",
      async (bad) => {
        await expect(backend.put(bad, [prng(10, 1)])).rejects.toBeInstanceOf(InvalidNameError);
        await expect(backend.get(bad, 0, 1)).rejects.toBeInstanceOf(InvalidNameError);
      },
    );
  });
}
