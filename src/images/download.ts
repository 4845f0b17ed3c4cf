/**
 * Bytes out: an image's data (or a range of it) opened for reading, refused before a byte is
 * sent when it is known damaged.
 */
import type { ImageRecord } from "../catalog/image-records.js";
import type { ReadPiece } from "../engine/read.js";
import { DamagedDataError } from "../errors.js";
import type { Access } from "./image-access.js";
import type { ImageService } from "./images.js";

export interface ImageDownload {
  image: ImageRecord;
  /** The bytes (or the requested range), in pooled pieces; undefined when the image has no data. */
  body?: AsyncGenerator<ReadPiece>;
  start: number;
  end: number;
}

/**
 * Opens an image's data for reading, or a range [start, end) of it. An image without data
 * answers with no body (Glance's 204). `prefer`: stores to read from first (an unknown name is
 * refused; a store without the image is passed over).
 */
export async function download(
  svc: ImageService,
  id: string,
  range?: { start: number; end: number },
  access?: Access,
  prefer: readonly string[] = [],
): Promise<ImageDownload> {
  for (const name of prefer) svc.engine.store(name);
  const image = await svc.get(id, access);
  if (!image.object || (image.status !== "active" && image.status !== "deactivated")) {
    return { image, start: 0, end: 0 };
  }
  // Refused before a byte is sent: a response cut off mid-way is all a client could get later.
  if ((await svc.engine.stat(image.object)).damaged) throw new DamagedDataError(`The data of image ${id}`);
  const start = range?.start ?? 0;
  const end = range?.end ?? (image.size as number);
  return { image, start, end, body: svc.engine.readPooled(image.object, { start, end, prefer }) };
}
