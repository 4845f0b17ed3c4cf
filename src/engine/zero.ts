/** All-zero chunks: detected on ingest, synthesized on read, never stored. */

const ZEROS = Buffer.alloc(16 * 1024 * 1024);

/** True if every byte is zero (memcmp against a zero page: tens of GB/s). */
export function isAllZero(data: Uint8Array): boolean {
  for (let at = 0; at < data.length; at += ZEROS.length) {
    const n = Math.min(ZEROS.length, data.length - at);
    if (Buffer.compare(data.subarray(at, at + n), ZEROS.subarray(0, n)) !== 0) return false;
  }
  return true;
}

/** `length` zero bytes. Shared and read-only: consumers must not write into it. */
export function zeroBytes(length: number): Buffer {
  return length <= ZEROS.length ? ZEROS.subarray(0, length) : Buffer.alloc(length);
}
