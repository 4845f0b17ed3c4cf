/**
 * The fast per-chunk checksum: XXH64 (seed 0) of the chunk's plain bytes, kept beside its
 * BLAKE3 id in the catalog's chunk record and in its pack entry, and checked on every read.
 *
 * Production storage checks every read with a cheap checksum and keeps cryptographic checks for
 * scrub (Ceph BlueStore: crc32c per block; ZFS: fletcher4). BLAKE3 stays the chunk's id and is
 * checked by scrub, fsck, copy and repair. Measured here on 64 KiB chunks (bench/checksum.ts,
 * docs/benchmarks.md): XXH64 from @node-rs/xxhash is several times faster than BLAKE3 and than
 * both crc32c and that package's xxh3, so it runs on the main thread, with no worker round trip.
 */
import { xxh64 } from "@node-rs/xxhash";

export const CHUNK_SUM_ALGORITHM = "xxh64";
export const CHUNK_SUM_BYTES = 8;

export function chunkSum(data: Uint8Array): bigint {
  return xxh64(data);
}
