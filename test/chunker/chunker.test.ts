import { describe, expect, it } from "vitest";
import { Chunker } from "../../src/chunker/chunker.js";
import { chunkLengthsJs } from "../../src/chunker/cut-points-js.js";
import { DEFAULT_CHUNKER_PARAMS } from "../../src/chunker/params.js";
import { prng, randomSplits } from "../helpers/data.js";

function chunkStream(pieces: Uint8Array[], chunker = new Chunker()): number[] {
  const lens: number[] = [];
  for (const p of pieces) chunker.push(p, (c) => lens.push(c.length));
  chunker.finish((c) => lens.push(c.length));
  return lens;
}

describe("streaming chunker", () => {
  const data = prng(42, 6 * 1024 * 1024);
  const reference = chunkLengthsJs(data, DEFAULT_CHUNKER_PARAMS);

  it("cuts where the plain-JS reference cuts, given the whole input at once", () => {
    expect(chunkStream([data])).toEqual(reference);
  });

  it("cuts at the same points whatever sizes the input arrives in", () => {
    for (const seed of [1, 2, 3]) {
      expect(chunkStream(randomSplits(data, seed, 200_000))).toEqual(reference);
    }
  });

  it("cuts at the same points when the input arrives one byte at a time", () => {
    const small = data.subarray(0, 700_000);
    const pieces = Array.from({ length: small.length }, (_, i) => small.subarray(i, i + 1));
    expect(chunkStream(pieces)).toEqual(chunkLengthsJs(small, DEFAULT_CHUNKER_PARAMS));
  });

  it("keeps every chunk within min and max, except a short last chunk", () => {
    const { min, max } = DEFAULT_CHUNKER_PARAMS;
    expect(reference.slice(0, -1).every((l) => l >= min && l <= max)).toBe(true);
    expect(reference.reduce((a, b) => a + b, 0)).toBe(data.length);
  });

  it("cuts all-zero input at max, since no fingerprint matches", () => {
    const zeros = new Uint8Array(1024 * 1024 + 5);
    const lens = chunkStream([zeros]);
    expect(lens).toEqual([262144, 262144, 262144, 262144, 5]);
  });

  it("emits nothing for an empty stream and one short chunk for a short one", () => {
    expect(chunkStream([])).toEqual([]);
    expect(chunkStream([new Uint8Array(10)])).toEqual([10]);
  });

  it("can be reused after finish with the same results", () => {
    const c = new Chunker();
    expect(chunkStream([data], c)).toEqual(reference);
    expect(chunkStream([data], c)).toEqual(reference);
  });

  it("honours non-default parameters the same way as the reference", () => {
    const params = { min: 4096, avg: 16384, max: 65536 };
    expect(chunkStream(randomSplits(data, 9, 100_000), new Chunker(params))).toEqual(
      chunkLengthsJs(data, params),
    );
  });

  it("refuses parameters it cannot run", () => {
    expect(() => new Chunker({ min: 100, avg: 1000, max: 5000 })).toThrow(RangeError);
    expect(() => new Chunker({ min: 70000, avg: 65536, max: 262144 })).toThrow(RangeError);
  });
});

describe("zero runs", () => {
  it("cuts data with long zero runs exactly where the reference scan cuts", () => {
    const parts: Uint8Array[] = [];
    for (let i = 0; i < 12; i++) {
      parts.push(prng(i + 1, 50_000 + i * 7919));
      parts.push(new Uint8Array(100_000 + i * 65_537));
    }
    const total = parts.reduce((n, p) => n + p.length, 0);
    const data = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.length;
    }
    for (const params of [DEFAULT_CHUNKER_PARAMS, { min: 4096, avg: 16384, max: 65536 }]) {
      expect(chunkStream(randomSplits(data, 3, 300_000), new Chunker(params))).toEqual(
        chunkLengthsJs(data, params),
      );
    }
  });
});
