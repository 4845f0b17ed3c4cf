import { type ChunkerParams, GEAR, masksFor } from "./params.js";

/**
 * The reference implementation of the cut rule, in plain JavaScript over a whole buffer.
 * The streaming WebAssembly chunker must agree with it byte for byte; tests hold them to it.
 * Returns the length of the first chunk of `data` (which is all of it if no cut is found).
 */
export function firstCutJs(data: Uint8Array, from: number, to: number, params: ChunkerParams): number {
  const { maskS, maskL } = masksFor(params);
  const n = to - from;
  if (n <= params.min) return n;
  const normal = Math.min(params.avg, n);
  const limit = Math.min(params.max, n);
  let fp = 0;
  let i = params.min;
  for (; i < normal; i++) {
    fp = ((fp << 1) + GEAR[data[from + i]]) | 0;
    if ((fp & maskS) === 0) return i + 1;
  }
  for (; i < limit; i++) {
    fp = ((fp << 1) + GEAR[data[from + i]]) | 0;
    if ((fp & maskL) === 0) return i + 1;
  }
  return limit;
}

/** All chunk lengths of `data`, in order, by the reference implementation. */
export function chunkLengthsJs(data: Uint8Array, params: ChunkerParams): number[] {
  const out: number[] = [];
  let pos = 0;
  while (pos < data.length) {
    const len = firstCutJs(data, pos, data.length, params);
    out.push(len);
    pos += len;
  }
  return out;
}
