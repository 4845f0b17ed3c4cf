/**
 * Ingest: one pass over a byte stream that hashes it whole (on worker threads), cuts it into
 * chunks, names each by BLAKE3, appends only the chunks the store lacks to new packs (in the
 * store it is writing to), and then commits everything to the catalog in one transaction.
 *
 * Write order (docs/format.md): packs durable, the manifest object in the last of them (or on
 * its own when it does not fit, or no chunk was new) → catalog commit.
 * Until the commit nothing is visible; if anything fails or the process dies before it, the
 * catalog and every refcount are as they were, and what was written is unreferenced garbage.
 */
import { ManifestBuilder } from "../catalog/manifest.js";
import { encodeManifestObject } from "../catalog/manifest-object.js";
import { Chunker } from "../chunker/chunker.js";
import { TooLargeError } from "../errors.js";
import { chunkId } from "../hash/chunk-id.js";
import { looksCompressible } from "../store/chunk-codec.js";
import { manifestName } from "../store/names.js";
import { type ChunkLocation, PackWriter } from "../store/pack-writer.js";
import type { Engine } from "./engine.js";
import type { ActiveWrite } from "./gc.js";
import type { Store } from "./stores.js";
import { isAllZero } from "./zero.js";

export interface IngestResult {
  /** Hex BLAKE3 of the manifest: the object's id in the store. */
  manifestId: string;
  size: number;
  /** Whole-stream digests, hex, by algorithm (md5, sha512 by default). */
  hashes: Record<string, string>;
  chunkCount: number;
  /** All-zero chunks: recorded in the manifest, never stored. */
  zeroChunks: number;
  zeroBytes: number;
  /** Chunks this ingest wrote to new packs, their bytes, and the bytes they took there (compressed). */
  newChunks: number;
  bytesNew: number;
  bytesStored: number;
  /** Bytes of chunks the store already had (or that repeated earlier in this stream). */
  bytesDeduplicated: number;
  packsWritten: number;
  /** False when the same content was already stored as an object. */
  createdObject: boolean;
}

/** What a commit hook sees of the object being committed. */
export interface CommittedObject {
  manifestId: string;
  size: number;
  hashes: Record<string, string>;
}

export interface IngestOptions {
  /**
   * Runs inside the catalog's commit transaction with the object's id, size and hashes; what
   * it writes commits with the object or not at all. Throwing aborts the ingest.
   */
  inCommit?: (object: CommittedObject) => void;
  /** Refuse a stream longer than this many bytes (TooLargeError), before storing the excess. */
  maxBytes?: number;
  /** The store to write to (default: the engine's default store). */
  store?: string;
  /**
   * Write every chunk as if the store lacked it, so that how long the ingest takes says
   * nothing about what the store already holds (what other tenants uploaded). The commit
   * still references the copies already indexed; the ones written again are garbage that
   * collection reclaims. Repeats within the stream are still written once.
   */
  writeThrough?: boolean;
}

const MAX_SLICE = 1024 * 1024;
/** Batches of new chunks (a slice each) being compressed at once. */
const MAX_BATCHES_IN_FLIGHT = 4;

export async function ingest(
  engine: Engine,
  source: AsyncIterable<Uint8Array>,
  options: IngestOptions = {},
): Promise<IngestResult> {
  const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
  const writeThrough = options.writeThrough === true;
  const store = engine.store(options.store);
  let total = 0;
  const hasher = engine.hashers.acquire();
  const chunker = new Chunker(engine.chunkerParams);
  const packs = new PackWriter(store.backend, { packSize: store.packSize, buffers: store.packBuffers });
  const manifest = new ManifestBuilder();
  const written = new Map<string, ChunkLocation>();
  const stats = { zeroChunks: 0, zeroBytes: 0, bytesNew: 0, bytesStored: 0, bytesDeduplicated: 0 };
  let manifestObject: string | undefined;
  // Garbage collection spares what this ingest found indexed (every id in its manifest so far)
  // and what it wrote: it adds the id to the manifest before looking it up, in one go.
  const active: ActiveWrite = {
    store: store.name,
    pinned: () => manifest.chunkIds(),
    objects: () => (manifestObject ? [...packs.names(), manifestObject] : packs.names()),
  };
  engine.activeWrites.add(active);

  // New chunks wait here for compression (on the codec's workers), a slice's worth at a time;
  // a few batches are in flight while the chunker goes on, and they reach the packs in order.
  let batch: { id: Buffer; hex: string; plain: Buffer }[] = [];
  const pendingIds = new Set<string>();
  const compressing: Promise<void>[] = [];
  let appended: Promise<void> = Promise.resolve();

  const onChunk = (chunk: Uint8Array): void => {
    if (isAllZero(chunk)) {
      manifest.addZero(chunk.length);
      stats.zeroChunks++;
      stats.zeroBytes += chunk.length;
      return;
    }
    const id = chunkId(chunk);
    manifest.add(id, chunk.length);
    const hex = id.toString("hex");
    if (written.has(hex) || pendingIds.has(hex) || (!writeThrough && store.index.hasChunk(id))) {
      stats.bytesDeduplicated += chunk.length;
      return;
    }
    stats.bytesNew += chunk.length;
    if (!store.compression || !looksCompressible(chunk)) {
      written.set(hex, packs.add(id, chunk));
      stats.bytesStored += chunk.length;
      return;
    }
    // The chunker's window moves on: keep a copy until the codec has it.
    pendingIds.add(hex);
    batch.push({ id, hex, plain: Buffer.from(chunk) });
  };
  /** Sends the batch to the codec; its chunks join the packs after every earlier batch's. */
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const mine = batch;
    batch = [];
    const encoded = engine.codec.compress(mine.map((c) => c.plain));
    encoded.catch(() => {});
    appended = appended.then(async () => {
      const out = await encoded;
      out.forEach((e, i) => {
        const c = mine[i] as (typeof mine)[number];
        written.set(c.hex, packs.add(c.id, e.data, e.flags));
        pendingIds.delete(c.hex);
        stats.bytesStored += e.data.length;
      });
    });
    compressing.push(appended);
    // Bounded: memory stays a few slices, whatever the image's size.
    while (compressing.length > MAX_BATCHES_IN_FLIGHT) await compressing.shift();
  };

  let finished = false;
  try {
    for await (const piece of source) {
      const bytes = typeof piece === "string" ? Buffer.from(piece) : piece;
      total += bytes.length;
      if (total > maxBytes) throw new TooLargeError(`the stream exceeds the limit of ${maxBytes} bytes`);
      // A huge piece would seal several packs before the next drain; feed it in slices.
      for (let at = 0; at < bytes.length; at += MAX_SLICE) {
        const slice = bytes.subarray(at, at + MAX_SLICE);
        await hasher.update(slice);
        chunker.push(slice, onChunk);
        await flush();
        await packs.drain();
      }
    }
    chunker.finish(onChunk);
    await flush();
    await appended;
    const hashes = await hasher.digest();
    finished = true;
    const { id, bytes } = manifest.finish();
    const hex = id.toString("hex");
    const object = { size: manifest.size, chunkCount: manifest.count, hashes };
    // Each store carries the manifests of the objects it holds, to rebuild its index from.
    if (!(engine.catalog.getObject(id)?.stores[store.name] ?? 0)) {
      manifestObject = manifestName(hex);
      await putManifest(store, packs, id, encodeManifestObject(bytes, object));
    }
    const packList = await packs.finish();
    const { created } = await engine.catalog.commitIngest(store.name, {
      manifestId: id,
      manifest: bytes,
      object,
      written,
      packs: packList,
      alsoInTransaction: options.inCommit && (() => options.inCommit?.({ manifestId: hex, ...object })),
    });
    return {
      manifestId: hex,
      size: manifest.size,
      hashes,
      chunkCount: manifest.count,
      ...stats,
      newChunks: written.size,
      packsWritten: packList.length,
      createdObject: created,
    };
  } catch (e) {
    await appended.catch(() => {});
    await packs.abort();
    throw e;
  } finally {
    engine.activeWrites.delete(active);
    engine.hashers.release(hasher, finished);
  }
}

/**
 * Stores a manifest object in `store` with the chunks it came with: inside the pack still
 * open, when there is one with room (one PUT for a small upload, not two), else on its own.
 */
export async function putManifest(
  store: Store,
  packs: PackWriter,
  id: Buffer,
  parts: readonly Uint8Array[],
): Promise<void> {
  if (!packs.addManifest(id, parts)) await store.backend.put(manifestName(id.toString("hex")), parts);
}
