/**
 * Reuses large buffers (open packs). Allocating a fresh 32 MiB buffer per pack costs a page
 * fault per 4 KiB on first touch and an munmap on release: measured, that system time was
 * the largest single cost of ingesting new data. A pool keeps a few buffers mapped. They are
 * page-aligned, so the filesystem backend can write them with O_DIRECT without a copy.
 */
import { allocAligned } from "./aligned.js";

export class BufferPool {
  private idle: Buffer[] = [];

  constructor(
    readonly size: number,
    private readonly keep: number,
  ) {}

  take(): Buffer {
    return this.idle.pop() ?? allocAligned(this.size);
  }

  give(buf: Buffer): void {
    if (buf.length === this.size && this.idle.length < this.keep) this.idle.push(buf);
  }

  /** Drops the idle buffers (the memory returns when they are collected). */
  clear(): void {
    this.idle = [];
  }
}
