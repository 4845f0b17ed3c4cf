/** Deterministic pseudo-random bytes (xorshift32), so fixtures need no stored files. */
export function prng(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const words = new Uint32Array(out.buffer, 0, length >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  for (let i = words.length * 4; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Splits `data` into consecutive pieces of random sizes in [1, maxPiece]. */
export function randomSplits(data: Uint8Array, seed: number, maxPiece: number): Uint8Array[] {
  const sizes = prng(seed, 4 * 1024);
  const view = new DataView(sizes.buffer);
  const out: Uint8Array[] = [];
  let pos = 0;
  let k = 0;
  while (pos < data.length) {
    const n = 1 + (view.getUint32((k++ * 4) % (sizes.length - 4), true) % maxPiece);
    out.push(data.subarray(pos, pos + n));
    pos += n;
  }
  return out;
}

/** Text-like bytes (words from a small vocabulary, as logs and package lists are): compressible. */
export function textLike(seed: number, length: number): Buffer {
  const words = [
    "tessera",
    "image",
    "chunk",
    "pack",
    "glance",
    "qcow2",
    "debian",
    "kernel",
    "\n",
    "usr/lib/",
  ];
  const r = prng(seed, length);
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < length; i++) {
    const w = `${words[(r[i % r.length] as number) % words.length]}${(r[(i * 7) % r.length] as number) % 97} `;
    parts.push(w);
    n += w.length;
  }
  return Buffer.from(parts.join("")).subarray(0, length);
}
