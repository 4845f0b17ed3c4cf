import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Chunker } from "../../src/chunker/chunker.js";
import { CHUNKER_ALGORITHM, GEAR_HI, GEAR_LO } from "../../src/chunker/params.js";
import { chunkId } from "../../src/hash/chunk-id.js";
import { prng } from "../helpers/data.js";

// Golden vectors pin the chunking format: if a change moves a single cut point or id, the
// store format changed and CHUNKER_ALGORITHM must be bumped (then regenerate with
// UPDATE_GOLDEN=1 npx vitest run test/chunker/golden.test.ts).
const GOLDEN = new URL("./golden.json", import.meta.url);

function vectors() {
  const out: Record<string, { cuts: number[]; ids: string[] }> = {};
  for (const [name, seed, size] of [
    ["seed1-8MiB", 1, 8 * 1024 * 1024],
    ["seed2026-3MiB+7", 2026, 3 * 1024 * 1024 + 7],
  ] as const) {
    const data = prng(seed, size);
    const cuts: number[] = [];
    const ids: string[] = [];
    let pos = 0;
    const c = new Chunker();
    const sink = (chunk: Uint8Array) => {
      pos += chunk.length;
      cuts.push(pos);
      ids.push(chunkId(chunk).toString("hex"));
    };
    c.push(data, sink);
    c.finish(sink);
    out[name] = { cuts, ids };
  }
  return { algorithm: CHUNKER_ALGORITHM, vectors: out };
}

describe("golden vectors", () => {
  it("gives the committed cut points and chunk ids for seeded pseudo-random input", () => {
    const now = vectors();
    if (process.env.UPDATE_GOLDEN === "1" || !existsSync(GOLDEN)) {
      if (process.env.CI || process.env.UPDATE_GOLDEN !== "1") throw new Error("golden.json is missing");
      writeFileSync(GOLDEN, `${JSON.stringify(now, null, 1)}\n`);
    }
    expect(now).toEqual(JSON.parse(readFileSync(GOLDEN, "utf8")));
  });

  it("uses the gear table its comment describes (splitmix64 from 'Tessera1', as 32-bit halves)", () => {
    let s = 0x5465737365726131n;
    const M = (1n << 64n) - 1n;
    const hi: number[] = [];
    const lo: number[] = [];
    for (let i = 0; i < 256; i++) {
      s = (s + 0x9e3779b97f4a7c15n) & M;
      let z = s;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
      z ^= z >> 31n;
      hi.push(Number(BigInt.asIntN(32, z >> 32n)));
      lo.push(Number(z & 0xffffffffn));
    }
    expect(Array.from(GEAR_HI)).toEqual(hi);
    expect(Array.from(GEAR_LO)).toEqual(lo);
  });

  it("ships the WebAssembly module compiled from the committed .wat", async () => {
    const { compileGearScan } = await import("../../scripts/build-wasm.mjs");
    const committed = readFileSync(new URL("../../src/chunker/gear-scan-wasm.ts", import.meta.url), "utf8");
    expect(await compileGearScan()).toBe(committed);
  });
});
