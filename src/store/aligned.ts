/**
 * Page-aligned buffers. Node cannot align a Buffer, but a WebAssembly.Memory is always
 * allocated page-aligned (checked by test/store/fs-backend.test.ts through O_DIRECT, which
 * refuses unaligned memory), so aligned buffers are views of one. They are remembered, so
 * that a writer can tell whether a part may go to O_DIRECT without a copy.
 */
const WASM_PAGE = 65536;
export const IO_ALIGN = 4096;
const aligned = new WeakSet<ArrayBufferLike>();

/** A Buffer of `size` bytes whose first byte is page-aligned. Contents are zero. */
export function allocAligned(size: number): Buffer {
  const mem = new WebAssembly.Memory({ initial: Math.ceil(size / WASM_PAGE) });
  aligned.add(mem.buffer);
  return Buffer.from(mem.buffer, 0, size);
}

/** True if `part` starts on a page boundary of memory from allocAligned. */
export function isAligned(part: Uint8Array): boolean {
  return aligned.has(part.buffer) && part.byteOffset % IO_ALIGN === 0;
}
