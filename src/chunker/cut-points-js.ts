import { type ChunkerParams, GEAR_HI, GEAR_LO, masksFor } from "./params.js";

/**
 * The reference implementation of the cut rule, in plain JavaScript over a whole buffer.
 * The streaming WebAssembly chunker must agree with it byte for byte; tests hold them to it.
 * The 64-bit fingerprint is kept as two 32-bit halves; only the high half meets the masks.
 * Returns the length of the first chunk of data[from, to) (all of it if no cut is found).
 */
export function firstCutJs(data: Uint8Array, from: number, to: number, params: ChunkerParams): number {
  const { maskS, maskL } = masksFor(params);
  const n = to - from;
  if (n <= params.min) return n;
  const normal = Math.min(params.avg, n);
  const limit = Math.min(params.max, n);
  let hi = 0;
  let lo = 0;
  for (let i = params.min; i < limit; i++) {
    const b = data[from + i];
    // fp = (fp << 1) + GEAR[b] on 64 bits
    const lo2 = ((lo << 1) >>> 0) + GEAR_LO[b];
    hi = (((hi << 1) | (lo >>> 31)) + GEAR_HI[b] + (lo2 > 0xffffffff ? 1 : 0)) | 0;
    lo = lo2 >>> 0;
    if ((hi & (i < normal ? maskS : maskL)) === 0) return i + 1;
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
