/**
 * Typed errors of the engine. Each has a stable `code`; the API maps codes to HTTP statuses in
 * one table, and the CLI prints them. Nothing here knows about HTTP.
 */
export class TesseraError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An object, manifest or chunk that is not there. */
export class NotFoundError extends TesseraError {
  constructor(what: string) {
    super("not_found", `${what} not found`);
  }
}

/** Stored bytes that do not hash to their id: bit rot, a truncated pack, tampering. */
export class CorruptDataError extends TesseraError {
  constructor(message: string) {
    super("corrupt", message);
  }
}

/** A store made with another chunker, id or pack format than this process was asked to use. */
export class StoreFormatError extends TesseraError {
  constructor(message: string) {
    super("store_format", message);
  }
}

/** An object name that could escape the backend's namespace or is otherwise unusable. */
export class InvalidNameError extends TesseraError {
  constructor(name: string) {
    super("invalid_name", `invalid object name: ${JSON.stringify(name)}`);
  }
}

/** A byte range outside the object or inverted. */
export class RangeNotSatisfiableError extends TesseraError {
  constructor(message: string) {
    super("range_not_satisfiable", message);
  }
}

/**
 * A chunk that an ingest deduplicated against was collected before the ingest committed.
 * The ingest commits nothing; retrying it stores the chunk again.
 */
export class ChunkVanishedError extends TesseraError {
  constructor(idHex: string) {
    super("chunk_vanished", `chunk ${idHex} disappeared before commit; retry the ingest`);
  }
}

/**
 * A write whose lease lapsed (its process stalled past the lease's time to live, or the
 * catalog was unreachable to renew it): GC may have deleted what it wrote, so it commits
 * nothing. Retrying it writes everything again.
 */
export class LeaseLostError extends TesseraError {
  constructor(message: string) {
    super("lease_lost", message);
  }
}

/** A request that is malformed or invalid in itself (a bad value, a missing precondition field). */
export class BadRequestError extends TesseraError {
  constructor(message: string) {
    super("bad_request", message);
  }
}

/** A request the rules forbid: read-only or reserved attributes, protected images. */
export class ForbiddenError extends TesseraError {
  constructor(message: string) {
    super("forbidden", message);
  }
}

/** A request that conflicts with the current state (a status transition, a duplicate id). */
export class ConflictError extends TesseraError {
  constructor(message: string) {
    super("conflict", message);
  }
}

/** An image deleted while its upload was running. */
export class GoneError extends TesseraError {
  constructor(message: string) {
    super("gone", message);
  }
}

/** A body, image or list that exceeds a configured limit. */
export class TooLargeError extends TesseraError {
  constructor(message: string) {
    super("too_large", message);
  }
}

/** An upload that ended before its bytes did (the client went away or sent too few). */
export class IncompleteUploadError extends TesseraError {
  constructor(message: string) {
    super("incomplete_upload", message);
  }
}

/**
 * The object store could not be reached or answered with a transient failure (network,
 * 5xx, throttling). The retry wrapper retries these, and only these.
 */
export class BackendUnavailableError extends TesseraError {
  constructor(message: string, cause?: unknown) {
    super("backend_unavailable", message, { cause });
  }
}

/**
 * Too much already in progress (uploads past the configured cap): nothing was done; the same
 * request later may succeed.
 */
export class BusyError extends TesseraError {
  constructor(message: string) {
    super("busy", message);
  }
}

/**
 * A store out of space (ENOSPC, EDQUOT) while writing an object: what was being written is
 * garbage, nothing committed changed. Writes work again once space is freed (delete and GC).
 */
export class StoreFullError extends TesseraError {
  constructor(message: string, cause?: unknown) {
    super("store_full", message, { cause });
  }
}

/**
 * The catalog could not commit (no space left on its device, or its device failed a write):
 * the transaction did nothing, and the same write may succeed later.
 */
export class CatalogUnwritableError extends TesseraError {
  constructor(message: string, cause?: unknown) {
    super("catalog_unwritable", message, { cause });
  }
}

/**
 * The catalog's database cannot be reached (refused, reset, shutting down): nothing was
 * committed by the request that met it, and the same request may succeed once it is back.
 */
export class CatalogUnavailableError extends TesseraError {
  constructor(message: string, cause?: unknown) {
    super("catalog_unavailable", message, { cause });
  }
}

/** A store name that is not among the configured stores. */
export class UnknownStoreError extends TesseraError {
  constructor(readonly store: string) {
    // Glance's words for an upload to an unknown store.
    super("unknown_store", `Store for identifier ${store} not found`);
  }
}

/** The catalog has data in a store the configuration does not list (removed or renamed). */
export class MissingStoreError extends TesseraError {
  constructor(message: string) {
    super("store_missing", message);
  }
}

/** An object fsck found with a chunk no store holds intact: refused rather than served wrong. */
export class DamagedDataError extends TesseraError {
  constructor(what: string) {
    super("damaged", `${what} is damaged: a chunk of it is bad in every store (tessera fsck found it)`);
  }
}

/**
 * A catalog this process will not open as it is: written by a newer Tessera (its layout or
 * schema unknown here: upgrade Tessera), or of an older one whose migration waits for the
 * operator's word that a backup was taken (docs/operations.md, "Upgrading").
 */
export class CatalogVersionError extends TesseraError {
  constructor(message: string) {
    super("catalog_version", message);
  }
}
