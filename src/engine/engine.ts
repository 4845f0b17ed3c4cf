/**
 * The engine: a library that ingests byte streams into the content-addressed store and reads
 * them back, with no HTTP anywhere. `Engine.open` wires a catalog and an object backend
 * together and checks that the store's format matches this process's.
 */

import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { Catalog } from "../catalog/catalog.js";
import { type ChunkerParams, DEFAULT_CHUNKER_PARAMS } from "../chunker/params.js";
import { NotFoundError } from "../errors.js";
import { ChunkVerifier } from "../hash/chunk-verifier.js";
import { HasherPool } from "../hash/whole-image-hasher.js";
import type { ObjectBackend } from "../store/backend.js";
import { BufferPool } from "../store/buffer-pool.js";
import { ChunkCodec } from "../store/chunk-codec.js";
import { STORE_FORMAT_OBJECT } from "../store/names.js";
import { openBackend, type StoreConfig, storeEngineDefaults } from "../store/open-store.js";
import { type IngestOptions, type IngestResult, ingest } from "./ingest.js";
import { ManifestCache } from "./manifest-cache.js";
import { type ReadOptions, type ReadPiece, readObject, readPieces } from "./read.js";
import { type RebuildResult, rebuildIndex } from "./rebuild-index.js";
import { assertSameFormat, makeStoreFormat, type StoreFormat } from "./store-format.js";

export interface EngineOptions {
  /** Chunker parameters. Omitted: the store's own (or the defaults for a new store). */
  chunker?: ChunkerParams;
  /**
   * Whole-stream digests to compute on ingest (Glance: md5 and os_hash_algo), as Node crypto
   * names. Default md5 and sha512.
   */
  hashAlgorithms?: string[];
  /** Target pack size in bytes (default 16 MiB; docs/benchmarks.md has the measurement). */
  packSize?: number;
  /** Verify every chunk's BLAKE3 id on read (default true; on a worker thread). */
  verifyOnRead?: boolean;
  /** Bytes of pack reads kept in flight ahead of the consumer on read (default 8 MiB). */
  readAheadBytes?: number;
  /** Largest single ranged read of a pack on read (default 4 MiB). */
  readSegmentBytes?: number;
  /**
   * Compress new chunks with zstd before they go into packs ("zstd", the default) or store them
   * as they are ("none"). Either way a store reads both kinds: the choice is per chunk.
   */
  compression?: "zstd" | "none";
}

export const DEFAULT_PACK_SIZE = 16 * 1024 * 1024;

export class Engine {
  readonly hashers: HasherPool;
  readonly hashAlgorithms: string[];
  readonly packSize: number;
  readonly verifyOnRead: boolean;
  readonly readAheadBytes: number;
  readonly readSegmentBytes: number;
  readonly packBuffers: BufferPool;
  readonly readBuffers: BufferPool;
  readonly verifier = new ChunkVerifier();
  readonly codec = new ChunkCodec();
  readonly compression: boolean;
  readonly manifests = new ManifestCache();

  private constructor(
    readonly catalog: Catalog,
    readonly backend: ObjectBackend,
    readonly format: StoreFormat,
    options: EngineOptions,
  ) {
    this.hashAlgorithms = options.hashAlgorithms ?? ["md5", "sha512"];
    this.hashers = new HasherPool(this.hashAlgorithms);
    this.packSize = options.packSize ?? DEFAULT_PACK_SIZE;
    this.verifyOnRead = options.verifyOnRead ?? true;
    this.compression = options.compression === "zstd";
    this.readAheadBytes = options.readAheadBytes ?? 8 * 1024 * 1024;
    this.readSegmentBytes = options.readSegmentBytes ?? 4 * 1024 * 1024;
    if (this.packSize < 1024 * 1024 || this.packSize > 1024 * 1024 * 1024) {
      throw new RangeError("packSize must be between 1 MiB and 1 GiB");
    }
    if (this.packSize < 2 * format.chunker.max) {
      throw new RangeError("packSize must hold at least two chunks of the maximum size");
    }
    // Enough idle buffers for one ingest's open pack plus the ones being written.
    this.packBuffers = new BufferPool(this.packSize, 3);
    // A download's read-ahead plus the pieces its socket still holds.
    // Plain (not WebAssembly) memory: it is transferred to the verifier workers and back.
    this.readBuffers = new BufferPool(
      this.readSegmentBytes,
      Math.ceil(this.readAheadBytes / this.readSegmentBytes) + 4,
      (n) => Buffer.allocUnsafeSlow(n),
    );
  }

  get chunkerParams(): ChunkerParams {
    const { min, avg, max } = this.format.chunker;
    return { min, avg, max };
  }

  /**
   * Opens a store: the catalog in `catalogDir` and the objects on `backend`. A new store
   * records its format; an existing one must match the requested chunker parameters.
   */
  static async open(
    catalogDir: string,
    backend: ObjectBackend,
    options: EngineOptions = {},
  ): Promise<Engine> {
    await mkdir(catalogDir, { recursive: true });
    const catalog = Catalog.open(catalogDir);
    try {
      const format = await settleFormat(catalog, backend, options.chunker);
      return new Engine(catalog, backend, format, options);
    } catch (e) {
      await catalog.close();
      throw e;
    }
  }

  /**
   * A store under a data directory: the catalog in DIR/catalog, the objects on `store` (the
   * embedded default: the filesystem under DIR/objects).
   */
  static async openDir(
    dataDir: string,
    options: EngineOptions & { durable?: boolean; store?: StoreConfig } = {},
  ): Promise<Engine> {
    const store = options.store ?? { type: "filesystem" };
    const backend = await openBackend(store, dataDir, options.durable ?? true);
    try {
      return await Engine.open(join(dataDir, "catalog"), backend, {
        ...storeEngineDefaults(store),
        ...options,
      });
    } catch (e) {
      await backend.close();
      throw e;
    }
  }

  private activeIngests = 0;

  /** Ingests a byte stream; see ingest.ts. */
  async ingest(source: AsyncIterable<Uint8Array>, options: IngestOptions = {}): Promise<IngestResult> {
    this.activeIngests++;
    try {
      return await ingest(this, source, options);
    } finally {
      // An idle engine should not hold a few packs' worth of buffers.
      if (--this.activeIngests === 0) this.packBuffers.clear();
    }
  }

  /** Streams an object's bytes (or a range of them); see read.ts. */
  read(manifestId: Buffer | string, options: ReadOptions = {}): AsyncGenerator<Buffer> {
    return readObject(this, toId(manifestId), options);
  }

  /**
   * Like read, but the pieces' buffers come from a pool: the caller releases each piece when
   * done with it (see ReadPiece). For servers streaming many large reads.
   */
  readPooled(manifestId: Buffer | string, options: ReadOptions = {}): AsyncGenerator<ReadPiece> {
    return readPieces(this, toId(manifestId), options, true);
  }

  /** The size and hashes recorded for an object. */
  stat(manifestId: Buffer | string) {
    const rec = this.catalog.getObject(toId(manifestId));
    if (!rec) throw new NotFoundError(`object ${String(manifestId)}`);
    return rec;
  }

  /** Drops one holder of an object; its chunks become collectable when none is left. */
  release(manifestId: Buffer | string): Promise<{ removed: boolean }> {
    return this.catalog.releaseObject(toId(manifestId));
  }

  /** Rebuilds the chunk index from the packs alone; see rebuild-index.ts. */
  rebuildIndex(): Promise<RebuildResult> {
    return rebuildIndex(this);
  }

  async close(): Promise<void> {
    await this.hashers.close();
    await this.verifier.close();
    await this.codec.close();
    await this.catalog.close();
    await this.backend.close();
  }
}

export function toId(id: Buffer | string): Buffer {
  if (Buffer.isBuffer(id)) return id;
  if (!/^[0-9a-f]{64}$/.test(id)) throw new NotFoundError(`object ${JSON.stringify(id)}`);
  return Buffer.from(id, "hex");
}

async function readBackendFormat(backend: ObjectBackend): Promise<StoreFormat | undefined> {
  const info = await backend.stat(STORE_FORMAT_OBJECT);
  if (!info) return undefined;
  return JSON.parse((await backend.get(STORE_FORMAT_OBJECT, 0, info.size)).toString("utf8"));
}

async function settleFormat(
  catalog: Catalog,
  backend: ObjectBackend,
  requested: ChunkerParams | undefined,
): Promise<StoreFormat> {
  const onBackend = await readBackendFormat(backend);
  const inCatalog = catalog.meta.get("format") as StoreFormat | undefined;
  const existing = onBackend ?? inCatalog;
  const wanted = makeStoreFormat(requested ?? existing?.chunker ?? DEFAULT_CHUNKER_PARAMS);
  if (onBackend) assertSameFormat(onBackend, wanted, "the store");
  if (inCatalog) assertSameFormat(inCatalog, wanted, "the catalog");
  if (!onBackend) {
    await backend.put(STORE_FORMAT_OBJECT, [Buffer.from(`${JSON.stringify(wanted, null, 2)}\n`)]);
  }
  if (!inCatalog) await catalog.meta.put("format", wanted);
  return wanted;
}
