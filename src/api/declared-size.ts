/**
 * The `x-openstack-image-size` header of PUT /file and PUT /stage (Glance 2025.2): the size the
 * client says the body has. A body of any other size is refused (400) and, since the refusal is
 * thrown from the body's own stream, the upload fails as any cut-off upload does: nothing is
 * committed and the image is queued again. Bodies past the size are refused as soon as they
 * pass it, without reading the rest.
 */
import { BadRequestError } from "../errors.js";

const HEADER = "x-openstack-image-size";

/** The declared size, if the header is there; a value that is not a byte count is 400. */
export function declaredSize(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new BadRequestError(
      `The ${HEADER} header must be a whole number of bytes, not ${JSON.stringify(value)}.`,
    );
  }
  return Number(value);
}

/** `source` as is, or checked against the declared size as it streams. */
export function checkedAgainst(
  source: AsyncIterable<Uint8Array>,
  size: number | undefined,
): AsyncIterable<Uint8Array> {
  if (size === undefined) return source;
  return (async function* () {
    let seen = 0;
    for await (const piece of source) {
      seen += piece.length;
      if (seen > size) {
        throw new BadRequestError(`The image data is larger than the ${size} bytes of the ${HEADER} header.`);
      }
      yield piece;
    }
    if (seen !== size) {
      throw new BadRequestError(`The image data is ${seen} bytes, not the ${size} of the ${HEADER} header.`);
    }
  })();
}
