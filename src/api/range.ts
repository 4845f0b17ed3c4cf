/**
 * The Range header of an image download, as Glance reads it: one byte range (`a-b`, `a-`,
 * `-n`); several ranges are refused (400); a start at or beyond the end, or a last byte before
 * the first (`bytes=5-1`), is 416, as Glance answers (RFC 9110 14.2 says such a range SHOULD be
 * ignored; clients written against Glance expect the 416); a header that is not a byte range
 * at all is ignored (the whole image), as RFC 9110 asks.
 */
import { HttpError } from "./errors.js";

/** [start, end) of the image to send, or undefined for all of it. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | undefined {
  if (!header) return undefined;
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!m) return undefined;
  const specs = m[1].split(",");
  if (specs.length > 1) {
    throw new HttpError(
      400,
      "Requests with multiple ranges are not supported in Glance. You may make multiple single-range requests instead.",
    );
  }
  const r = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(specs[0]);
  if (!r || (r[1] === "" && r[2] === "")) return undefined;
  const unsatisfiable = () =>
    new HttpError(
      416,
      `The Range requested is not available.\nInvalid start position in Range header. Start position MUST be in the inclusive range [0, ${size - 1}].`,
      { "Content-Range": `bytes */${size}` },
    );
  if (r[1] === "") {
    const n = Number(r[2]);
    if (n === 0 || size === 0) throw unsatisfiable();
    return { start: Math.max(0, size - n), end: size };
  }
  const start = Number(r[1]);
  if (r[2] !== "" && Number(r[2]) < start) {
    throw new HttpError(416, "The Range requested is not available.\nInvalid Range header.", {
      "Content-Range": `bytes */${size}`,
    });
  }
  if (start >= size) throw unsatisfiable();
  const last = r[2] === "" ? size - 1 : Number(r[2]);
  return { start, end: Math.min(last + 1, size) };
}
