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
import type { CatalogTx } from "../catalog/catalog.js";
import { ManifestBuilder } from "../catalog/manifest.js";
import { encodeManifestObject } from "../catalog/manifest-object.js";
import { Chunker } from "../chunker/chunker.js";
import { TooLargeError } from "../errors.js";
import { chunkId } from "../hash/chunk-id.js";
import { chunkSum } from "../hash/chunk-sum.js";
import { looksCompressible } from "../store/chunk-codec.js";
import { manifestName } from "../store/names.js";
import { CHUNK_FLAGS_NONE } from "../store/pack-format.js";
import type { ChunkLocation, PackWriter } from "../store/pack-writer.js";
import type { Engine } from "./engine.js";
import { HeldChunks } from "./held-chunks.js";
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
   * Runs inside the catalog's commit (its unit of work `tx`) with the object's id, size and
   * hashes; what it writes commits with the object or not at all. Throwing aborts the ingest.
   */
  inCommit?: (tx: CatalogTx, object: CommittedObject) => Promise<void>;
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

export function ingest(
  engine: Engine,
  source: AsyncIterable<Uint8Array>,
  options: IngestOptions = {},
): Promise<IngestResult> {
  const store = engine.store(options.store);
  // The lease comes first: whatever the ingest finds indexed or writes outlives it.
  return engine.leased(`ingest into ${store.name}`, (lease) =>
    ingestLeased(engine, store, source, options, lease),
  );
}

async function ingestLeased(
  engine: Engine,
  store: Store,
  source: AsyncIterable<Uint8Array>,
  options: IngestOptions,
  lease: number,
): Promise<IngestResult> {
  const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
  const writeThrough = options.writeThrough === true;
  let total = 0;
  const hasher = engine.hashers.acquire();
  const chunker = new Chunker(engine.chunkerParams);
  const packs = await engine.packWriter(store);
  const manifest = new ManifestBuilder();
  const written = new Map<string, ChunkLocation>();
  const stats = { zeroChunks: 0, zeroBytes: 0, bytesNew: 0, bytesStored: 0, bytesDeduplicated: 0 };
  const slice = Math.min(MAX_SLICE, chunker.stablePiece);

  // New chunks wait here for compression (on the codec's workers), a slice's worth at a time;
  // a few batches are in flight while the chunker goes on, and they reach the packs in order.
  let batch: { id: Buffer; hex: string; plain: Buffer; sum: bigint }[] = [];
  const pendingIds = new Set<string>();
  const compressing: Promise<void>[] = [];
  let appended: Promise<void> = Promise.resolve();

  // Chunks wait here for one batched lookup in the store's index: a piece's worth, or (where a
  // lookup costs a round trip: batchHint) as many as the hint, the views into the chunker
  // (valid until its next push) copied while they wait. There, the batch's lookup runs while
  // the next batch is cut, one lookup ahead: the chunks are kept (keep) in order once it answers.
  const gather = store.index.batchHint ?? 1;
  let cut: { id: Buffer; chunk: Uint8Array }[] = [];
  /** How many of `cut` are copies already (the rest are views into the chunker). */
  let copied = 0;
  const held = new HeldChunks(engine.heldChunkSlabs);
  /** The batches looked up so far, kept in order. */
  let kept: Promise<void> = Promise.resolve();
  const onChunk = (chunk: Uint8Array): void => {
    if (isAllZero(chunk)) {
      manifest.addZero(chunk.length);
      stats.zeroChunks++;
      stats.zeroBytes += chunk.length;
      return;
    }
    const id = chunkId(chunk);
    manifest.add(id, chunk.length);
    cut.push({ id, chunk });
  };
  const copyViews = () => {
    for (; copied < cut.length; copied++) {
      const c = cut[copied] as (typeof cut)[number];
      c.chunk = held.copy(c.chunk);
    }
  };
  /** Stores the chunks cut so far that neither this ingest nor the store's index has. */
  const place = async (final = false): Promise<void> => {
    if (!final && cut.length < gather) {
      copyViews();
      return;
    }
    const ahead = gather > 1 && !final;
    if (ahead) copyViews(); // the chunker moves on before this batch is kept
    copied = 0;
    const mine = cut;
    cut = [];
    const slabs = held.seal();
    const indexed = writeThrough ? Promise.resolve([]) : store.index.contains(mine.map((c) => c.id));
    indexed.catch(() => {}); // awaited in `kept`, unless an earlier batch failed
    const before = kept;
    kept = (async () => {
      await before;
      const found = await indexed;
      for (const [k, c] of mine.entries()) keep(c.id, c.chunk, found[k] === true);
      held.release(slabs); // keep copied what it kept
    })();
    kept.catch(() => {}); // awaited below, or by the next batch, or at the end
    await (ahead ? before : kept);
  };
  const keep = (id: Buffer, chunk: Uint8Array, indexed: boolean): void => {
    const hex = id.toString("hex");
    if (indexed || written.has(hex) || pendingIds.has(hex)) {
      stats.bytesDeduplicated += chunk.length;
      return;
    }
    stats.bytesNew += chunk.length;
    const sum = chunkSum(chunk);
    if (!store.compression || !looksCompressible(chunk)) {
      written.set(hex, packs.add(id, chunk, CHUNK_FLAGS_NONE, sum));
      stats.bytesStored += chunk.length;
      return;
    }
    // The chunker's window moves on: keep a copy until the codec has it.
    pendingIds.add(hex);
    batch.push({ id, hex, plain: Buffer.from(chunk), sum });
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
        written.set(c.hex, packs.add(c.id, e.data, e.flags, c.sum));
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
      for (let at = 0; at < bytes.length; at += slice) {
        const part = bytes.subarray(at, at + slice);
        await hasher.update(part);
        chunker.push(part, onChunk);
        await place();
        await flush();
        await packs.drain();
      }
    }
    chunker.finish(onChunk);
    await place(true);
    await flush();
    await appended;
    const hashes = await hasher.digest();
    finished = true;
    const { id, bytes } = manifest.finish();
    const hex = id.toString("hex");
    const object = { size: manifest.size, chunkCount: manifest.count, hashes };
    // Each store carries the manifests of the objects it holds, to rebuild its index from.
    if (!((await engine.catalog.getObject(id))?.stores[store.name] ?? 0)) {
      await putManifest(store, packs, id, encodeManifestObject(bytes, object));
    }
    const packList = await packs.finish();
    const inCommit = options.inCommit;
    const { created } = await engine.catalog.transact((tx) =>
      tx.commitIngest(store.name, {
        lease,
        manifestId: id,
        manifest: bytes,
        object,
        written,
        packs: packList,
        alsoInTransaction: inCommit && ((tx) => inCommit(tx, { manifestId: hex, ...object })),
      }),
    );
    learnWritten(engine, store, written);
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
    // A lookup still in flight would keep its chunks into the packs after they were aborted.
    await kept.catch(() => {});
    await appended.catch(() => {});
    await packs.abort();
    throw e;
  } finally {
    engine.hashers.release(hasher, finished);
  }
}

/**
 * Remembers where this ingest wrote its chunks, once committed, so that this node serves them
 * without asking the catalog: only for the first store reads try, which is where a lookup would
 * find them (a copy another ingest indexed first is as good while its pack lasts).
 */
function learnWritten(engine: Engine, store: Store, written: ReadonlyMap<string, ChunkLocation>): void {
  const cache = engine.locations;
  if (!cache || engine.stores.values().next().value !== store) return;
  for (const [hex, loc] of written) cache.set(Buffer.from(hex, "hex"), { store, rec: { ...loc, refs: 1 } });
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
