/**
 * What the catalog conformance suites share: a fresh catalog per test from the factory, and
 * records to feed it (real manifests, chunk placements, image, member and task records).
 * Only the catalog's interfaces (src/catalog/catalog.ts), never an implementation's internals.
 */
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach } from "vitest";
import type { Catalog, ChunkRecord, IngestCommit, StoreWrite } from "../../src/catalog/catalog.js";
import type { ImageRecord } from "../../src/catalog/image-records.js";
import { ManifestBuilder } from "../../src/catalog/manifest.js";
import type { Member } from "../../src/catalog/member-records.js";
import type { MetadefNamespaceRecord } from "../../src/catalog/metadef-records.js";
import type { TaskRecord } from "../../src/catalog/task-records.js";
import { packName } from "../../src/store/names.js";
import type { ChunkLocation } from "../../src/store/pack-writer.js";

export type CatalogFactory = () => Promise<{ catalog: Catalog; cleanup(): Promise<void> }>;

/** A fresh catalog for each test of the enclosing describe; cleaned up after it. */
export function freshCatalog(make: CatalogFactory): () => Catalog {
  let current: { catalog: Catalog; cleanup(): Promise<void> } | undefined;
  beforeEach(async () => {
    current = await make();
  });
  afterEach(async () => {
    const c = current;
    current = undefined;
    await c?.cleanup();
  });
  return () => {
    if (!current) throw new Error("no catalog outside a test");
    return current.catalog;
  };
}

/** Every stored chunk of these tests is this long (an all-zero one too). */
export const CHUNK_LEN = 1000;
export const S1 = "store-one";
export const S2 = "store-two";

export const newChunk = (): Buffer => randomBytes(32);
export const newPack = (): Buffer => randomBytes(16);
export const packObject = (pack: Buffer): string => packName(pack.toString("hex"));

export interface TestManifest {
  id: Buffer;
  bytes: Buffer;
  size: number;
  count: number;
  /** Its stored chunks, distinct, in order of first appearance. */
  distinct: Buffer[];
}

/** A real manifest listing `entries` in order (`null`: an all-zero chunk, which has no id). */
export function manifest(entries: (Buffer | null)[]): TestManifest {
  const b = new ManifestBuilder();
  const distinct: Buffer[] = [];
  for (const e of entries) {
    if (e === null) {
      b.addZero(CHUNK_LEN);
      continue;
    }
    b.add(e, CHUNK_LEN);
    if (!distinct.some((d) => d.equals(e))) distinct.push(e);
  }
  const { id, bytes } = b.finish();
  return { id, bytes, size: b.size, count: b.count, distinct };
}

/** What a write of `ids` into one new pack wrote: their places there, and the pack. */
export interface PackWrite {
  pack: Buffer;
  written: Map<string, ChunkLocation>;
  packs: { id: Buffer; size: number; chunks: number }[];
}

export function packWrite(ids: readonly Buffer[]): PackWrite {
  const pack = newPack();
  const written = new Map<string, ChunkLocation>();
  for (const id of ids) {
    const hex = id.toString("hex");
    if (!written.has(hex))
      written.set(hex, { pack, offset: written.size * CHUNK_LEN, length: CHUNK_LEN, flags: 0 });
  }
  return { pack, written, packs: [{ id: pack, size: written.size * CHUNK_LEN + 64, chunks: written.size }] };
}

export const NO_WRITE: Omit<PackWrite, "pack"> = { written: new Map(), packs: [] };

export function storeWrite(lease: number, w: Omit<PackWrite, "pack"> = NO_WRITE): StoreWrite {
  return { lease, written: w.written, packs: w.packs };
}

export function ingestCommit(
  m: TestManifest,
  lease: number,
  w: Omit<PackWrite, "pack"> = NO_WRITE,
  hashes: Record<string, string> = { md5: "m".repeat(32) },
): IngestCommit {
  return {
    ...storeWrite(lease, w),
    manifestId: m.id,
    manifest: m.bytes,
    object: { size: m.size, chunkCount: m.count, hashes },
  };
}

/** Runs `fn` with a live lease, ended after, as a write does. */
export async function withLease<T>(cat: Catalog, fn: (lease: number) => Promise<T>): Promise<T> {
  const lease = await cat.beginLease("conformance write", 60_000);
  try {
    return await fn(lease.id);
  } finally {
    await cat.endLease(lease.id);
  }
}

/** Ingests `m` into `store` under a lease of its own; `w` defaults to a new pack of all its chunks. */
export function ingest(
  cat: Catalog,
  store: string,
  m: TestManifest,
  w: Omit<PackWrite, "pack"> = packWrite(m.distinct),
  hashes?: Record<string, string>,
): Promise<{ created: boolean }> {
  return withLease(cat, (lease) =>
    cat.transact((tx) => tx.commitIngest(store, ingestCommit(m, lease, w, hashes))),
  );
}

export async function lookup(cat: Catalog, store: string, id: Buffer): Promise<ChunkRecord | undefined> {
  const got = await cat.chunkIndex(store).lookup([id]);
  return got[0];
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const e of it) out.push(e);
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function image(id: string, over: Partial<ImageRecord> = {}): ImageRecord {
  return {
    id,
    name: `image ${id}`,
    status: "active",
    visibility: "private",
    protected: false,
    os_hidden: false,
    owner: "alpha",
    disk_format: "raw",
    container_format: "bare",
    min_disk: 0,
    min_ram: 0,
    size: 100,
    virtual_size: null,
    checksum: null,
    os_hash_algo: null,
    os_hash_value: null,
    created_at: "2024-01-01T00:00:00.000Z",
    updated_at: "2024-01-01T00:00:00.000Z",
    tags: [],
    properties: {},
    object: null,
    stores: [],
    ...over,
  };
}

export function member(imageId: string, project: string, status: Member["status"] = "pending"): Member {
  const at = "2024-02-01T00:00:00.000Z";
  return { image_id: imageId, member_id: project, status, created_at: at, updated_at: at };
}

export function task(id: string, imageId: string, createdAt: string): TaskRecord {
  return {
    id,
    type: "api_image_import",
    status: "pending",
    owner: "alpha",
    image_id: imageId,
    user_id: null,
    request_id: null,
    input: { method: "web-download" },
    result: null,
    message: "",
    created_at: createdAt,
    updated_at: createdAt,
    expires_at: null,
  };
}

/**
 * A metadefs namespace with a property, an object and a tag; its property maps in an order
 * neither alphabetical nor by length (jsonb would reorder them).
 */
export function namespace(name: string, over: Partial<MetadefNamespaceRecord> = {}): MetadefNamespaceRecord {
  const at = "2024-04-01T00:00:00.000Z";
  return {
    namespace: name,
    display_name: `Display ${name}`,
    description: "for the conformance suite",
    visibility: "public",
    protected: false,
    owner: "admin-project",
    created_at: at,
    resource_type_associations: [{ name: "OS::Glance::Image", prefix: "hw_", created_at: at }],
    properties: {
      zeta_long_name: { type: "string", title: "Z", enum: ["b", "a"] },
      a: { type: "integer", title: "A", minimum: 1 },
      mid: { type: "array", title: "M", items: { type: "string", enum: ["x", "y"] } },
    },
    objects: [
      {
        name: "obj",
        properties: { y: { type: "boolean", title: "Y" }, x: { type: "string", title: "X" } },
        created_at: at,
      },
    ],
    tags: [{ name: "tag-1", created_at: at }],
    ...over,
  };
}
