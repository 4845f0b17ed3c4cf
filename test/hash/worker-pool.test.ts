import { describe, expect, it } from "vitest";
import { WorkerPool } from "../../src/hash/worker-pool.js";

const SOURCE = `
const { parentPort } = require("node:worker_threads");
parentPort.on("message", (m) => {
  if (m.die) setTimeout(() => { throw new Error("worker died"); }, 20);
  else setTimeout(() => parentPort.postMessage({ seq: m.seq, v: m.v * 2 }), m.delay ?? 0);
});
`;

function pool() {
  return new WorkerPool<{ seq: number; v: number }, number, number>({
    threads: 2,
    source: SOURCE,
    workerData: () => undefined,
    settle: (m, limit) => {
      if (m.v > limit) throw new RangeError(`${m.v} is over ${limit}`);
      return m.v;
    },
  });
}

describe("worker pool", () => {
  it("answers each request through settle, with the context it was posted with", async () => {
    const p = pool();
    try {
      const answers = await Promise.all([1, 2, 3, 4, 5].map((v) => p.call({ v }, [], 100)));
      expect(answers).toEqual([2, 4, 6, 8, 10]);
      await expect(p.call({ v: 60 }, [], 100)).rejects.toThrow("120 is over 100");
    } finally {
      await p.close();
    }
  });

  it("fails only the requests of a worker that dies, and starts another in its place", async () => {
    const p = pool();
    try {
      const dying = p.call({ die: true }, [], 100); // lane 0
      const other = p.call({ v: 3, delay: 200 }, [], 100); // lane 1, answered after lane 0 died
      await expect(dying).rejects.toThrow("worker died");
      expect(await other).toBe(6);
      expect(await p.call({ v: 4 }, [], 100)).toBe(8); // lane 0 again: a new worker
    } finally {
      await p.close();
    }
  });

  it("throws, leaving nothing pending, when a message cannot be posted", async () => {
    const p = pool();
    try {
      expect(() => p.call({ v: 1, f: () => 1 }, [], 100)).toThrow();
      expect(await p.call({ v: 2 }, [], 100)).toBe(4);
    } finally {
      await p.close();
    }
  });
});
