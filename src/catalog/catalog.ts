/**
 * The catalog: an LMDB environment with one database per kind of record.
 *
 *   meta       string → JSON          the store format this catalog was built for
 *   chunks     chunk id (32 B) → 32 B  pack id (16) | offset u32 | length u32 | flags u32 | refs u32
 *   packs      pack id (16 B) → JSON   { size, chunks, createdAt }
 *   manifests  manifest id → bytes     the binary manifest (see manifest.ts)
 *   objects    manifest id → JSON      { size, chunkCount, hashes, refs, createdAt }
 *   images     image id → record       the image records of the API (see image-records.ts)
 *   image_by_K [value, image id] → ""  one sort index per sortable image attribute K
 *
 * Reference counts: a chunk's `refs` is the number of manifests in `manifests` that list it
 * (once per manifest, however often it repeats); an object's `refs` is the number of holders
 * (ingests not yet released). Everything an ingest commits is one write transaction, so a
 * reader sees all of it or none of it. Reads are synchronous (LMDB reads are memory-mapped).
 */
import { type Database, open, type RootDatabase } from "lmdb";
import { ChunkVanishedError } from "../errors.js";
import type { ChunkLocation } from "../store/pack-writer.js";
import { IMAGE_SORT_KEYS, type ImageRecord, type ImageSortKey } from "./image-records.js";
import { decodeManifest, distinctChunkIds } from "./manifest.js";

export interface ChunkRecord extends ChunkLocation {
  refs: number;
}

export interface PackRecord {
  size: number;
  chunks: number;
  createdAt: string;
}

export interface ObjectRecord {
  size: number;
  chunkCount: number;
  hashes: Record<string, string>;
  refs: number;
  createdAt: string;
}

/** What one ingest commits. */
export interface IngestCommit {
  manifestId: Buffer;
  manifest: Buffer;
  object: Omit<ObjectRecord, "refs" | "createdAt">;
  /** Chunks this ingest wrote, by hex id. */
  written: Map<string, ChunkLocation>;
  packs: { id: Buffer; size: number; chunks: number }[];
  /**
   * Runs inside the commit's transaction after the object is recorded (the image service
   * flips its image to active here, so the image and its data become visible together).
   * Throwing aborts the whole commit.
   */
  alsoInTransaction?: () => void;
}

const CHUNK_RECORD_BYTES = 32;

export function encodeChunkRecord(r: ChunkRecord): Buffer {
  const b = Buffer.allocUnsafe(CHUNK_RECORD_BYTES);
  r.pack.copy(b, 0);
  b.writeUInt32LE(r.offset, 16);
  b.writeUInt32LE(r.length, 20);
  b.writeUInt32LE(r.flags, 24);
  b.writeUInt32LE(r.refs, 28);
  return b;
}

export function decodeChunkRecord(b: Buffer): ChunkRecord {
  return {
    pack: Buffer.from(b.subarray(0, 16)),
    offset: b.readUInt32LE(16),
    length: b.readUInt32LE(20),
    flags: b.readUInt32LE(24),
    refs: b.readUInt32LE(28),
  };
}

export class Catalog {
  private constructor(
    private readonly root: RootDatabase,
    readonly meta: Database<unknown, string>,
    readonly chunks: Database<Buffer, Buffer>,
    readonly packs: Database<PackRecord, Buffer>,
    readonly manifests: Database<Buffer, Buffer>,
    readonly objects: Database<ObjectRecord, Buffer>,
    readonly images: Database<ImageRecord, string>,
    readonly imageIndexes: Record<ImageSortKey, Database<Buffer, (string | number | boolean)[]>>,
  ) {}

  /** Opens (creating if needed) the catalog in directory `path`. */
  static open(path: string, options: { durable?: boolean } = {}): Catalog {
    const root = open({ path, maxDbs: 32, noSync: options.durable === false });
    const bin = { keyEncoding: "binary", encoding: "binary" } as const;
    const indexes = {} as Record<ImageSortKey, Database<Buffer, (string | number | boolean)[]>>;
    for (const k of IMAGE_SORT_KEYS) indexes[k] = root.openDB({ name: `image_by_${k}`, encoding: "binary" });
    return new Catalog(
      root,
      root.openDB({ name: "meta", encoding: "json" }),
      root.openDB<Buffer, Buffer>({ name: "chunks", ...bin }),
      root.openDB<PackRecord, Buffer>({ name: "packs", keyEncoding: "binary", encoding: "json" }),
      root.openDB<Buffer, Buffer>({ name: "manifests", ...bin }),
      root.openDB<ObjectRecord, Buffer>({ name: "objects", keyEncoding: "binary", encoding: "json" }),
      root.openDB<ImageRecord, string>({ name: "images", encoding: "msgpack" }),
      indexes,
    );
  }

  getChunk(id: Uint8Array): ChunkRecord | undefined {
    const b = this.chunks.get(Buffer.from(id.buffer, id.byteOffset, id.byteLength));
    return b ? decodeChunkRecord(b) : undefined;
  }

  hasChunk(id: Uint8Array): boolean {
    return this.chunks.doesExist(Buffer.from(id.buffer, id.byteOffset, id.byteLength));
  }

  getManifest(id: Buffer): Buffer | undefined {
    return this.manifests.get(id);
  }

  getObject(id: Buffer): ObjectRecord | undefined {
    return this.objects.get(id);
  }

  /**
   * The commit point of an ingest: in one transaction, add a holder to the object if its
   * manifest is already known; otherwise record the manifest, the object, the new packs and
   * chunk locations, and add one reference to every distinct chunk it lists. A chunk that is
   * neither in the index nor written by this ingest was collected meanwhile: the whole
   * transaction aborts with ChunkVanishedError.
   * Resolves when the transaction is durable; returns whether the manifest was new.
   */
  async commitIngest(c: IngestCommit): Promise<{ created: boolean }> {
    const now = new Date().toISOString();
    return this.root.transaction(() => {
      const existing = this.objects.get(c.manifestId);
      if (existing) {
        const hashes = { ...c.object.hashes, ...existing.hashes };
        this.objects.putSync(c.manifestId, { ...existing, hashes, refs: existing.refs + 1 });
        c.alsoInTransaction?.();
        return { created: false };
      }
      for (const p of c.packs) {
        this.packs.putSync(p.id, { size: p.size, chunks: p.chunks, createdAt: now });
      }
      for (const [hex, id] of distinctChunkIds(decodeManifest(c.manifest))) {
        const cur = this.chunks.get(id);
        if (cur) {
          const rec = decodeChunkRecord(cur);
          rec.refs++;
          this.chunks.putSync(id, encodeChunkRecord(rec));
          continue;
        }
        const loc = c.written.get(hex);
        if (!loc) throw new ChunkVanishedError(hex);
        this.chunks.putSync(id, encodeChunkRecord({ ...loc, refs: 1 }));
      }
      this.manifests.putSync(c.manifestId, c.manifest);
      this.objects.putSync(c.manifestId, { ...c.object, refs: 1, createdAt: now });
      c.alsoInTransaction?.();
      return { created: true };
    });
  }

  /**
   * Drops one holder of an object. When the last goes, the manifest and object are removed
   * and each chunk loses the manifest's reference; chunks reaching zero stay indexed (and
   * stored) until garbage collection. Returns whether the manifest was removed.
   */
  async releaseObject(manifestId: Buffer): Promise<{ removed: boolean }> {
    return this.root.transaction(() => this.releaseObjectInTransaction(manifestId));
  }

  /** releaseObject's body, for callers that release as part of a larger transaction. */
  releaseObjectInTransaction(manifestId: Buffer): { removed: boolean } {
    const obj = this.objects.get(manifestId);
    if (!obj) return { removed: false };
    if (obj.refs > 1) {
      this.objects.putSync(manifestId, { ...obj, refs: obj.refs - 1 });
      return { removed: false };
    }
    const manifest = this.manifests.get(manifestId);
    if (manifest) {
      for (const id of distinctChunkIds(decodeManifest(manifest)).values()) {
        const cur = this.chunks.get(id);
        if (!cur) continue;
        const rec = decodeChunkRecord(cur);
        rec.refs = Math.max(0, rec.refs - 1);
        this.chunks.putSync(id, encodeChunkRecord(rec));
      }
    }
    this.manifests.removeSync(manifestId);
    this.objects.removeSync(manifestId);
    return { removed: true };
  }

  async close(): Promise<void> {
    await this.root.close();
  }

  /** Runs `fn` in one write transaction (used by index rebuilds). */
  transaction<T>(fn: () => T): Promise<T> {
    return this.root.transaction(fn);
  }
}
