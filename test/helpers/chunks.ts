/**
 * A corpus's chunks computed independently of the engine: cut points from the plain-JS
 * reference chunker, contents named by sha256 (not the engine's BLAKE3), all-zero chunks named
 * by their length (the engine never stores them).
 */
import { createHash } from "node:crypto";
import { chunkLengthsJs } from "../../src/chunker/cut-points-js.js";
import type { ChunkerParams } from "../../src/chunker/params.js";

export function chunkLengths(data: Buffer, params: ChunkerParams): { key: string; len: number }[] {
  const out: { key: string; len: number }[] = [];
  let at = 0;
  for (const len of chunkLengthsJs(data, params)) {
    const chunk = data.subarray(at, at + len);
    at += len;
    const zero = chunk.every((b) => b === 0);
    out.push({ key: zero ? `zero:${len}` : createHash("sha256").update(chunk).digest("hex"), len });
  }
  return out;
}
