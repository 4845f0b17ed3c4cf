/**
 * What a caller may see and do to an image, as the image service applies it: the API builds an
 * Access from the request's identity and the access policy; the service checks it against the
 * current record, inside the unit of work that acts on it.
 */
import type { RecordsReader } from "../catalog/catalog.js";
import type { ImageRecord } from "../catalog/image-records.js";
import { NotFoundError } from "../errors.js";

/**
 * What the caller may see and do, checked against the current record inside the unit of work
 * that acts on it.
 */
export interface Access {
  /**
   * Whether the caller sees the image at all; one it does not see is reported missing. Reads
   * what it needs (the caller's membership) through `records`: the unit of work's, inside one.
   */
  sees(rec: ImageRecord, records: RecordsReader): Promise<boolean>;
  /** Throws (ForbiddenError) when the caller sees the image but may not do this to it. */
  check(rec: ImageRecord): void;
}

export class ImageNotFoundError extends NotFoundError {
  constructor(
    readonly imageId: string,
    message = `No image found with ID ${imageId}`,
  ) {
    super(`image ${imageId}`);
    this.message = message;
  }
}

/**
 * The image `id` if there and seen by the caller (else `notFound`), once access allows. Inside
 * a unit of work `records` is its `tx`.
 */
export async function findImage(
  records: RecordsReader,
  id: string,
  access: Access | undefined,
  notFound = () => new ImageNotFoundError(id),
): Promise<ImageRecord> {
  const rec = await records.getImage(id);
  if (!rec || (access && !(await access.sees(rec, records)))) throw notFound();
  access?.check(rec);
  return rec;
}
