/**
 * The fast per-chunk checksum: XXH64 (seed 0) of the chunk's plain bytes, kept beside its
 * BLAKE3 id in the catalog's chunk record and in its pack entry, and checked on every read.
 *
 * Production storage checks every read with a cheap checksum and keeps cryptographic checks for
 * scrub (Ceph BlueStore: crc32c per block; ZFS: fletcher4). BLAKE3 stays the chunk's id and is
 * checked by scrub, fsck, copy and repair. Measured here on 64 KiB chunks (bench/checksum.ts,
 * docs/benchmarks.md): XXH64 from @node-rs/xxhash is several times faster than BLAKE3 and than
 * both crc32c and that package's xxh3, so it runs on the main thread, with no worker round trip.
 * As for chunk ids, a platform without its prebuilt native build gets hash-wasm's (the same
 * sums, slower).
 */
import { createRequire } from "node:module";
import { createXXHash64 } from "hash-wasm";

export const CHUNK_SUM_ALGORITHM = "xxh64";
export const CHUNK_SUM_BYTES = 8;

type SumFn = (data: Uint8Array) => bigint;

function loadNative(): SumFn | undefined {
  if (process.env.TESSERA_XXH64 === "wasm") return undefined;
  try {
    const mod = createRequire(import.meta.url)("@node-rs/xxhash") as { xxh64(d: Uint8Array): bigint };
    return (d) => mod.xxh64(d);
  } catch {
    return undefined;
  }
}

async function loadWasm(): Promise<SumFn> {
  const h = await createXXHash64();
  return (d) => {
    h.init();
    h.update(d);
    return Buffer.from(h.digest("binary")).readBigUInt64BE(0);
  };
}

const native = loadNative();
const wasm = await loadWasm();

/** XXH64 of `data`: a chunk's sum. */
export const chunkSum: SumFn = native ?? wasm;

/** The portable implementation, exported so tests can compare the two. */
export const chunkSumWasm: SumFn = wasm;
