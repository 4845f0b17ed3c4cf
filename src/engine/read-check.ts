/**
 * The check a read makes of a segment's plain bytes before handing them out, as its store's
 * readCheck says: each chunk's fast checksum against its record, or its BLAKE3 id (on the
 * verifier's worker threads), or nothing. A chunk whose record has no sum (stored before there
 * were sums) is checked by its BLAKE3 id whatever the mode but "off".
 */
import { CorruptDataError } from "../errors.js";
import { chunkSum } from "../hash/chunk-sum.js";
import type { ChunkSpan } from "../hash/chunk-verifier.js";
import type { ReadCheck } from "../store/open-store.js";
import type { Engine } from "./engine.js";

export interface CheckedSpan extends ChunkSpan {
  sum: bigint | undefined;
}

/** Whether a segment's chunks must be checked by BLAKE3: always in "full", for a missing sum in "fast". */
export function needsFullCheck(mode: ReadCheck, spans: readonly CheckedSpan[]): boolean {
  return mode === "full" || (mode === "fast" && spans.some((s) => s.sum === undefined));
}

/**
 * Resolves with the bytes once every span passed (see ChunkVerifier.verify: use only the Buffer
 * this resolves with). `decoded`: BLAKE3 was checked already, on decompression.
 */
export function checkSegment(
  engine: Engine,
  mode: ReadCheck,
  data: Buffer,
  spans: readonly CheckedSpan[],
  decoded = false,
): Promise<Buffer> | Buffer {
  if (mode === "off") return data;
  if (needsFullCheck(mode, spans)) return decoded ? data : engine.verifier.verify(data, spans);
  for (const s of spans) {
    if (chunkSum(data.subarray(s.offset, s.offset + s.length)) !== s.sum) {
      throw new CorruptDataError(`chunk ${s.id.toString("hex")} does not match its checksum`);
    }
  }
  return data;
}
