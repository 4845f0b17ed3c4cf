/**
 * The object backend: where packs, manifests and the store's format record live. The whole
 * seam is these five operations, so a backend for another object store (S3, ...) adds one
 * class. Retries, concurrency limits and metrics are wrappers around a backend, not code in it.
 *
 * Names are relative paths of segments `[A-Za-z0-9._-]+` separated by "/" (validated by
 * `assertValidName`); backends may map them to files or keys but never outside their root.
 */
import { InvalidNameError } from "../errors.js";

export interface ObjectInfo {
  name: string;
  size: number;
}

export interface ObjectBackend {
  /**
   * Stores the concatenation of `parts` as `name`. Atomic: readers see either no object or the
   * whole one, never a prefix. Resolves only when the object is durable (as far as the backend
   * is configured to be). Objects are written once; a put to an existing name replaces it with
   * identical bytes only (callers never rewrite a name with other content).
   */
  put(name: string, parts: readonly Uint8Array[]): Promise<void>;

  /**
   * Reads `length` bytes at `offset`. Rejects with NotFoundError if the object does not exist
   * and with CorruptDataError if it is shorter than offset+length. A backend may read into
   * `into` (at least `length` bytes; a reused buffer saves a page fault per 4 KiB) and return
   * a view of it, or ignore it and return a buffer of its own: callers use what it returns.
   */
  get(name: string, offset: number, length: number, into?: Buffer): Promise<Buffer>;

  /** The object's size, or undefined if it does not exist. */
  stat(name: string): Promise<ObjectInfo | undefined>;

  /** Removes the object. Idempotent: removing a missing object succeeds. */
  delete(name: string): Promise<void>;

  /** Every complete object whose name starts with `prefix`, in no particular order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;

  /**
   * Removes what writes cut off by a crash left beside the objects and list() never shows
   * (the filesystem's temporary files), untouched for `olderThanMs`; how many it removed.
   * Absent where a write leaves nothing behind (an S3 or Swift PUT is whole or absent).
   */
  sweepLeftovers?(olderThanMs: number): Promise<number>;

  /** Releases handles; the backend is unusable afterwards. */
  close(): Promise<void>;
}

const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

/** Throws InvalidNameError unless `name` is a safe relative object name. */
export function assertValidName(name: string): void {
  if (typeof name !== "string" || name.length === 0 || name.length > 1024) throw new InvalidNameError(name);
  for (const seg of name.split("/")) {
    if (!SEGMENT.test(seg)) throw new InvalidNameError(name);
  }
}
