/**
 * Every object of one backend copied into another, through the backend interface, so the
 * same code copies a filesystem store into a backup and back. Objects are write-once, so a
 * copy of each, taken at any time, is the object.
 */
import { NotFoundError } from "../errors.js";
import type { ObjectBackend } from "../store/backend.js";

/** Objects copied at once: a few packs in memory, enough to keep a disk busy. */
const PARALLEL = 4;
/** Read in pieces of this size: an object is put whole, from its pieces. */
const PIECE = 8 * 1024 * 1024;

export interface CopiedObjects {
  /** Name → size of every object copied. */
  objects: Map<string, number>;
  bytes: number;
  /**
   * Listed, then gone before they were read: a collection deleting what it had trashed
   * before the copy began. Nothing the copied catalog needs (the caller checks).
   */
  vanished: number;
}

async function readWhole(from: ObjectBackend, name: string, size: number): Promise<Buffer[]> {
  const parts: Buffer[] = [];
  for (let at = 0; at < size; at += PIECE) {
    // A copy of the piece: a backend may hand out a view of a buffer it reuses.
    parts.push(Buffer.from(await from.get(name, at, Math.min(PIECE, size - at))));
  }
  return parts;
}

/** Copies every object `from` lists into `to`; `onObject` is told of each one copied. */
export async function copyObjects(
  from: ObjectBackend,
  to: ObjectBackend,
  onObject: (copied: number, total: number) => void = () => {},
): Promise<CopiedObjects> {
  const listed: { name: string; size: number }[] = [];
  for await (const o of from.list("")) listed.push(o);
  const out: CopiedObjects = { objects: new Map(), bytes: 0, vanished: 0 };
  let next = 0;
  const worker = async () => {
    while (next < listed.length) {
      const { name, size } = listed[next++] as { name: string; size: number };
      let parts: Buffer[];
      try {
        parts = await readWhole(from, name, size);
      } catch (e) {
        if (!(e instanceof NotFoundError)) throw e;
        out.vanished++;
        continue;
      }
      await to.put(name, parts);
      out.objects.set(name, size);
      out.bytes += size;
      onObject(out.objects.size, listed.length);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return out;
}
