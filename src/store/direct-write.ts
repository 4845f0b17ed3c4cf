/**
 * Writing files with O_DIRECT, bypassing the page cache.
 *
 * Why: measured here, the kernel's copy of buffered writes into the page cache
 * (copy_folio_from_iter_atomic) cost as much CPU per byte as md5, a full core-second per GB
 * ingested, and it fills the cache with write-once packs. Direct writes DMA from our buffer.
 *
 * O_DIRECT needs page-aligned memory, offsets and lengths. Node gives no way to align a
 * Buffer, but a WebAssembly.Memory is always page-aligned, so staging buffers are made from
 * one (aligned.ts). Parts that are themselves aligned (pack buffers) are written in place;
 * others are copied into a staging buffer first. The last block is zero-padded, and the file
 * is truncated to its exact length afterwards.
 */
import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { allocAligned, IO_ALIGN as BLOCK, isAligned } from "./aligned.js";

const STAGE_BYTES = 1024 * 1024;
const idleStages: Buffer[] = [];

function takeStage(): Buffer {
  return idleStages.pop() ?? allocAligned(STAGE_BYTES);
}

function giveStage(b: Buffer): void {
  if (idleStages.length < 2) idleStages.push(b);
}

/**
 * Opens `path` (which must not exist) for direct writing, or returns undefined when the
 * filesystem refuses O_DIRECT (tmpfs, some network filesystems): callers then write buffered.
 */
export async function openDirect(path: string): Promise<FileHandle | undefined> {
  if (constants.O_DIRECT === undefined) return undefined;
  try {
    return await open(
      path,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT,
      0o644,
    );
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EINVAL") return undefined;
    throw e;
  }
}

/** Writes the concatenation of `parts` to a file opened by openDirect, at its exact length. */
export async function writeDirect(fh: FileHandle, parts: readonly Uint8Array[]): Promise<void> {
  const stage = takeStage();
  try {
    let pos = 0;
    let fill = 0;
    for (const part of parts) {
      let off = 0;
      if (fill === 0 && isAligned(part)) {
        const whole = part.length - (part.length % BLOCK);
        if (whole > 0) await writeFully(fh, part, whole, pos);
        pos += whole;
        off = whole;
      }
      while (off < part.length) {
        const n = Math.min(part.length - off, STAGE_BYTES - fill);
        stage.set(part.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill === STAGE_BYTES) {
          await writeFully(fh, stage, STAGE_BYTES, pos);
          pos += STAGE_BYTES;
          fill = 0;
        }
      }
    }
    if (fill > 0) {
      const padded = Math.ceil(fill / BLOCK) * BLOCK;
      stage.fill(0, fill, padded);
      await writeFully(fh, stage, padded, pos);
      await fh.truncate(pos + fill);
    }
  } finally {
    giveStage(stage);
  }
}

async function writeFully(fh: FileHandle, buf: Uint8Array, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesWritten } = await fh.write(buf, done, length - done, position + done);
    if (bytesWritten <= 0) throw new Error("direct write made no progress");
    done += bytesWritten;
  }
}
