/**
 * The chunking format: the gear table and the parameters that decide where chunks are cut.
 *
 * Cut points, and therefore chunk ids and dedup across stores, depend on every value here.
 * Changing the table, the mask rule or the defaults is a format change: bump
 * CHUNKER_ALGORITHM and let stores created with the old one refuse to open (see store-format.ts).
 */

/** Name and version of the cut rule; recorded in every store. */
export const CHUNKER_ALGORITHM = "fastcdc-gear32-nc2-v1";

export interface ChunkerParams {
  /** No cut is taken before this many bytes (except the last chunk of a stream). */
  min: number;
  /** The normal size: before it the harder mask applies, after it the easier one. */
  avg: number;
  /** A cut is forced at this many bytes. */
  max: number;
}

export const DEFAULT_CHUNKER_PARAMS: Readonly<ChunkerParams> = Object.freeze({
  min: 16 * 1024,
  avg: 64 * 1024,
  max: 256 * 1024,
});

/**
 * 256 fixed pseudo-random 32-bit values: the top halves of the first 256 outputs of
 * splitmix64 seeded with 0x5465737365726131 ("Tessera1"). test/chunker/gear.test.ts
 * regenerates them, so an accidental edit fails a test.
 */
export const GEAR = Int32Array.from([
  0xe856e262, 0x371bade2, 0x939b739e, 0xc93ef916, 0xfa2b6ec9, 0x9ffad26b, 0x0fe4dd73, 0xd5723040, 0xd0deff68,
  0x5ffb2b8e, 0xa318f99a, 0x877d9454, 0x0f4b3537, 0xa5b96211, 0x1738b234, 0xf2f4dfbf, 0x6b5cb95d, 0x45b2dd99,
  0x73c5db58, 0x33dcea3e, 0x8a0c2d72, 0xc405ac43, 0x65cce798, 0xe96b426d, 0x18fc7dd5, 0x44115526, 0x058ce6b5,
  0x254f14b2, 0xf333e000, 0x55331632, 0x10c60dec, 0xbcf07ec0, 0xc17f144b, 0x4f8890fb, 0x50f19e4d, 0xce28309d,
  0x1d0b358a, 0x7f726a20, 0x02251858, 0x3d300cac, 0x58609a09, 0xe0b4a90d, 0x59377fff, 0xd9fd845c, 0xd64b9900,
  0xc4750262, 0xea1d4941, 0xf58efe7b, 0xb77ec246, 0x087caa09, 0x2a352a61, 0xbda414da, 0xe6093d03, 0x9a91daa9,
  0xc2818431, 0xa66da296, 0x06d78c04, 0x42023791, 0x544266c4, 0x9ad5959f, 0x88b5f64d, 0x175d0217, 0x5a035703,
  0xfcb6133f, 0x5175684c, 0xec6ff6c5, 0x2301dc7f, 0xc34f93e9, 0x905f676b, 0x743dd368, 0xa33b0ecd, 0xdfac0467,
  0x8d4f448f, 0x67aec103, 0xea1c760e, 0x3e6d8b4c, 0xae53af1f, 0xd0733130, 0x4119bca5, 0x7deab9ba, 0x7e14f4f6,
  0x2b63ccc2, 0x447c5990, 0x8a9c1535, 0xf7b95a09, 0x7ed39610, 0x77e573a7, 0xec6850fe, 0x8683aa83, 0xc3e41d6a,
  0x797c7c3f, 0xe0b8153b, 0xab048e86, 0x3e570d95, 0xabd7fd65, 0x3e5daf97, 0x9cfad15e, 0xe270f9e6, 0x003919d5,
  0xb9488064, 0x8cf4d51a, 0xbf7951d2, 0xb4a444a5, 0x29f72197, 0xb21c091b, 0xdd24fbf4, 0xde3b30cc, 0x970c93bd,
  0xa79a18fd, 0x702c25da, 0x6e171ef3, 0x0eb70820, 0x44142570, 0xfde2fc51, 0xe90ae69d, 0xdf720a17, 0xdff2f017,
  0x54780ff9, 0x56b275bc, 0x4acbdb5c, 0xfaf93ff1, 0x85ff1275, 0x7d8a923f, 0x4c2f5640, 0x2d968a52, 0x1739702e,
  0xbaa59fcf, 0x2d030af6, 0xfa7aedf2, 0x586edfca, 0xb8b698c7, 0xa67fea62, 0x08a10dda, 0x61c8424d, 0x63d7d08b,
  0xf893bae8, 0x77c95e93, 0xe6720501, 0xb9e8b342, 0x07934409, 0x62f50a26, 0xd23e15c5, 0xd3fed3ea, 0xf72fa396,
  0x7ec6a7a0, 0x00d75923, 0x68b0e8d2, 0xe132003a, 0xdf5b8b27, 0xb2b7c0b5, 0xd614b8d2, 0xba5d5cfe, 0x51b6df27,
  0x60b901c0, 0x9aa75876, 0x744145ac, 0xd7484581, 0x7cb81860, 0x6a0a9c11, 0xb2ec7d66, 0x6f9b3312, 0x6511cde4,
  0xef7d90d5, 0xe2ef225d, 0x47e4ec14, 0xcda6c4a9, 0x6b738138, 0xf5641922, 0xeb137029, 0x4ed8621f, 0x808bc826,
  0x7492c76f, 0xcd7ea881, 0x03f2c4d4, 0xed0c57df, 0x9b4afba2, 0x4811dd73, 0x448bc298, 0x24ae53fb, 0xaa11e636,
  0x341a46c2, 0xfe38009a, 0xff7dcc23, 0x5c747cc6, 0x17ccd049, 0x76e93a12, 0x1c542a0f, 0x5bb7d1cb, 0x09b7cb02,
  0x47de41fe, 0xe7451142, 0x19f100fa, 0x7b92ebce, 0xed6280bf, 0xa116bcbb, 0x8567dcfa, 0xb34c0506, 0x9936a4d8,
  0xe27f541e, 0xa48262e1, 0xf1e52c40, 0x32f5e93d, 0x5065c8bb, 0x3cce37ce, 0x0bf99659, 0xdc6d4784, 0x2a2a0518,
  0x4144ced4, 0xa03c70dd, 0xaf9bff7f, 0x0bda2d41, 0xcd23d4ef, 0x6bfc8f7d, 0xbdafeb42, 0x18ced8c3, 0x678fe9a6,
  0x319762f1, 0x4bd46938, 0x0f125e9b, 0x0a629077, 0xc8c4e00c, 0x76c4f240, 0x4c2544fa, 0x32fe0633, 0xc7de506d,
  0x4c686cb9, 0xdb5bead7, 0xf7f6c654, 0x71377ea6, 0x46cc9d49, 0x1a833a48, 0xf1a85e67, 0x824ccc93, 0x3716fe3c,
  0x0eff974a, 0x5b5c5559, 0x6502faff, 0x3e006b5e, 0x97ff9d82, 0x829a92b7, 0xfeddf61e, 0xe3cba3a4, 0xcd048de6,
  0x1fa54328, 0x8f05b19c, 0x0f8d6023, 0x9ee37bed, 0xeff9522c, 0x2fccba55, 0xf134a7b5, 0xe6dd7417, 0x9b21a68d,
  0x081cae6f, 0xa5df3fd8, 0xac0930d6, 0x4116dfb2,
]);

/**
 * Normalized chunking, level 2 (FastCDC): the mask before the normal size has two bits more
 * than log2(avg), the one after it two bits fewer. Masks take the high bits of the
 * fingerprint: with a shift-left gear hash, bit k depends on the last k+1 bytes, so the high
 * bits carry the widest window.
 */
export function masksFor(params: ChunkerParams): { maskS: number; maskL: number } {
  const bits = Math.round(Math.log2(params.avg));
  const high = (n: number) => (n >= 32 ? -1 : ~((1 << (32 - n)) - 1)) | 0;
  return { maskS: high(bits + 2), maskL: high(bits - 2) };
}

/** Throws unless the parameters describe a chunker this code can run. */
export function validateChunkerParams(p: ChunkerParams): void {
  const ok =
    Number.isInteger(p.min) &&
    Number.isInteger(p.avg) &&
    Number.isInteger(p.max) &&
    p.min >= 64 &&
    p.min < p.avg &&
    p.avg < p.max &&
    p.max <= 16 * 1024 * 1024 &&
    2 ** Math.round(Math.log2(p.avg)) === p.avg;
  if (!ok) {
    throw new RangeError(
      `invalid chunker parameters ${JSON.stringify(p)}: need 64 <= min < avg < max <= 16 MiB, avg a power of two`,
    );
  }
}
