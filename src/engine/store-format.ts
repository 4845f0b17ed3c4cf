/**
 * The store's format record: what a store was created with. Chunk boundaries and ids depend
 * on every field, so a store opened with different values would stop deduplicating against
 * itself (or, for the pack and manifest versions, misread its own data). It is written once
 * at creation to the backend (`tessera-store.json`) and to the catalog, and checked at
 * every open. Its pack version is the newest written into the store: raised when a newer
 * Tessera first writes a pack into it (FormatRaise).
 */

import type { Catalog } from "../catalog/catalog.js";
import { MANIFEST_VERSION } from "../catalog/manifest.js";
import {
  CHUNKER_ALGORITHM,
  type ChunkerParams,
  DEFAULT_CHUNKER_PARAMS,
  validateChunkerParams,
} from "../chunker/params.js";
import { StoreFormatError } from "../errors.js";
import { CHUNK_ID_ALGORITHM } from "../hash/chunk-id.js";
import type { ObjectBackend } from "../store/backend.js";
import { STORE_FORMAT_OBJECT } from "../store/names.js";
import { PACK_VERSION } from "../store/pack-format.js";

export interface StoreFormat {
  formatVersion: 1;
  chunker: { algorithm: string } & ChunkerParams;
  chunkId: string;
  packVersion: number;
  manifestVersion: number;
}

export function makeStoreFormat(params: ChunkerParams): StoreFormat {
  validateChunkerParams(params);
  return {
    formatVersion: 1,
    chunker: { algorithm: CHUNKER_ALGORITHM, min: params.min, avg: params.avg, max: params.max },
    chunkId: CHUNK_ID_ALGORITHM,
    packVersion: PACK_VERSION,
    manifestVersion: MANIFEST_VERSION,
  };
}

function canonical(f: StoreFormat): string {
  const c = f.chunker;
  return JSON.stringify([f.formatVersion, c.algorithm, c.min, c.avg, c.max, f.chunkId, f.manifestVersion]);
}

/**
 * Throws StoreFormatError unless `found` (from the store) equals `wanted` (this process), but
 * for an older pack version: this process reads those packs too, and writes its own beside them
 * (the caller then records its version, so that an older Tessera refuses the store).
 */
export function assertSameFormat(found: StoreFormat, wanted: StoreFormat, where: string): void {
  const versions = (f: StoreFormat) =>
    `format ${f.formatVersion}, pack version ${f.packVersion}, manifest version ${f.manifestVersion}`;
  if (
    found.formatVersion > wanted.formatVersion ||
    found.packVersion > wanted.packVersion ||
    found.manifestVersion > wanted.manifestVersion
  ) {
    // Not a choice of parameters the operator can change: only a newer Tessera reads it.
    throw new StoreFormatError(
      `${where} was written by a newer Tessera (${versions(found)}; this one writes ${versions(wanted)}): upgrade Tessera`,
    );
  }
  if (canonical(found) !== canonical(wanted)) {
    throw new StoreFormatError(
      `${where} was created with ${JSON.stringify(found)}, but this process uses ${JSON.stringify(wanted)}; ` +
        "open it with its own chunker parameters or use another data directory",
    );
  }
}

async function readBackendFormat(backend: ObjectBackend): Promise<StoreFormat | undefined> {
  const info = await backend.stat(STORE_FORMAT_OBJECT);
  if (!info) return undefined;
  return JSON.parse((await backend.get(STORE_FORMAT_OBJECT, 0, info.size)).toString("utf8"));
}

function formatText(f: StoreFormat): Buffer {
  return Buffer.from(`${JSON.stringify(f, null, 2)}\n`);
}

/**
 * Checks the format records of a store's backend and of the catalog against what this process
 * uses (`requested` chunker parameters, else the store's own), writing the ones missing (a new
 * store). Returns the format, and whether either record names an older pack version: such a
 * store is raised to this one only when a pack is first written to it (FormatRaise), so that an
 * open that fails, or only reads, leaves an older Tessera able to open the store again.
 */
export async function settleFormat(
  catalog: Catalog,
  backend: ObjectBackend,
  requested: ChunkerParams | undefined,
): Promise<{ format: StoreFormat; older: boolean }> {
  const onBackend = await readBackendFormat(backend);
  const inCatalog = await catalog.getMeta<StoreFormat>("format");
  const existing = onBackend ?? inCatalog;
  const wanted = makeStoreFormat(requested ?? existing?.chunker ?? DEFAULT_CHUNKER_PARAMS);
  if (onBackend) assertSameFormat(onBackend, wanted, "the store");
  if (inCatalog) assertSameFormat(inCatalog, wanted, "the catalog");
  if (!onBackend) await backend.put(STORE_FORMAT_OBJECT, [formatText(wanted)]);
  if (!inCatalog) await catalog.transact((tx) => tx.setMeta("format", wanted));
  const older =
    (onBackend?.packVersion ?? PACK_VERSION) < PACK_VERSION ||
    (inCatalog?.packVersion ?? PACK_VERSION) < PACK_VERSION;
  return { format: wanted, older };
}

/**
 * Raises the format records of stores opened at an older pack version before the first pack
 * of this version goes into them: the store's record, then the catalog's (a crash between the
 * two leaves a store an older Tessera refuses, and the next write finishes the raise).
 */
export class FormatRaise {
  private readonly pending = new Map<ObjectBackend, Promise<void> | undefined>();

  constructor(
    private readonly catalog: Catalog,
    private readonly format: StoreFormat,
  ) {}

  /** Marks `backend` as opened at an older pack version. */
  mark(backend: ObjectBackend): void {
    this.pending.set(backend, undefined);
  }

  /** Resolves once `backend`'s records name this pack version (at once when they did). */
  before(backend: ObjectBackend): Promise<void> {
    if (!this.pending.has(backend)) return Promise.resolve();
    let raising = this.pending.get(backend);
    if (!raising) {
      raising = (async () => {
        await backend.put(STORE_FORMAT_OBJECT, [formatText(this.format)]);
        await this.catalog.transact((tx) => tx.setMeta("format", this.format));
        this.pending.delete(backend);
      })();
      // A failed raise is tried again by the next write.
      raising.catch(() => this.pending.set(backend, undefined));
      this.pending.set(backend, raising);
    }
    return raising;
  }
}
