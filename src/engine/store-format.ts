/**
 * The store's format record: what a store was created with. Chunk boundaries and ids depend
 * on every field, so a store opened with different values would stop deduplicating against
 * itself (or, for the pack and manifest versions, misread its own data). It is written once
 * at creation to the backend (`tessera-store.json`) and to the catalog, and checked at
 * every open. Its pack version is the newest written into the store: raised when a newer
 * Tessera first opens it.
 */

import { MANIFEST_VERSION } from "../catalog/manifest.js";
import { CHUNKER_ALGORITHM, type ChunkerParams, validateChunkerParams } from "../chunker/params.js";
import { StoreFormatError } from "../errors.js";
import { CHUNK_ID_ALGORITHM } from "../hash/chunk-id.js";
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
  if (canonical(found) !== canonical(wanted) || found.packVersion > wanted.packVersion) {
    throw new StoreFormatError(
      `${where} was created with ${JSON.stringify(found)}, but this process uses ${JSON.stringify(wanted)}; ` +
        "open it with its own chunker parameters or use another data directory",
    );
  }
}
