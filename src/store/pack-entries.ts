/** Reading a pack's entries from a backend: the pack's own list of what it holds. */
import { CorruptDataError } from "../errors.js";
import type { ObjectBackend } from "./backend.js";
import {
  checkPackHeader,
  decodePackEntries,
  decodePackFooter,
  PACK_FOOTER_BYTES,
  PACK_HEADER_BYTES,
  type PackEntry,
} from "./pack-format.js";

/** The entries of pack `name` of `size` bytes: three ranged reads (header, footer, entries). */
export async function readPackEntries(
  backend: ObjectBackend,
  name: string,
  size: number,
): Promise<PackEntry[]> {
  if (size < PACK_HEADER_BYTES + PACK_FOOTER_BYTES) throw new CorruptDataError("pack too short");
  const entryBytes = checkPackHeader(await backend.get(name, 0, PACK_HEADER_BYTES));
  const footer = await backend.get(name, size - PACK_FOOTER_BYTES, PACK_FOOTER_BYTES);
  const { count, entriesOffset } = decodePackFooter(footer, size, entryBytes);
  const entries = await backend.get(name, entriesOffset, count * entryBytes);
  return decodePackEntries(entries, footer, entryBytes);
}
