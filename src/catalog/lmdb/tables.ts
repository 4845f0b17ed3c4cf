/**
 * The LMDB environment's databases, one per kind of record:
 *
 *   meta         string → JSON           the store format, the layout version, the sequence
 *   chunks@S     chunk id (32 B) → 40 B  pack id (16) | offset u32 | length u32 | flags u32 | refs u32
 *                                        | sum u64 (chunk-record.ts; 32 B without a sum, written before)
 *   packs@S      pack id (16 B) → JSON   { size, chunks, createdAt }
 *   trash@S      object name → JSON      { at, after, size, seq } (store-index.ts)
 *   condemned@S  chunk id → JSON         { pack, offset, length, flags, seq, sum? (hex) }: out of the index
 *                                        by GC, still in its pack until that is deleted
 *   doomed@S     pack id | chunk id → "" the condemned chunks by pack
 *   manifests    manifest id → bytes     the binary manifest (manifest.ts)
 *   objects      manifest id → JSON      { size, chunkCount, hashes, stores, createdAt }
 *   images       image id → record       image-records.ts; image_by_K [value, id] → "" per sort key K
 *   members      [image id, project] → JSON
 *   usage        owner → JSON            each owner's images, bytes and uploads (quota tallies)
 *   tasks        task id → JSON          and task_by_image [image, task] → ""
 *   metadef_namespaces  name → JSON     a namespace whole (metadef-records.ts)
 *   metadef_resource_types  name → JSON
 *   leases       lease id → JSON         LeaseRecord (catalog.ts)
 *
 * Only code under catalog/lmdb/ touches these.
 */
import { type Database, open, type RootDatabase } from "lmdb";
import type { ObjectRecord } from "../catalog.js";
import { IMAGE_SORT_KEYS, type ImageRecord, type ImageSortKey, type OwnerUsage } from "../image-records.js";
import type { MemberRecord } from "../member-records.js";
import type { MetadefNamespaceRecord, MetadefResourceTypeRecord } from "../metadef-records.js";
import type { PackRecord, TrashEntry } from "../store-index.js";
import type { TaskRecord } from "../task-records.js";

/** A condemned chunk: where it still is, and the stamp of its condemnation. */
export interface CondemnedChunk {
  pack: string;
  offset: number;
  length: number;
  flags: number;
  seq: number;
  /** The chunk's fast checksum, hex, when its record had one. */
  sum?: string;
}

export interface StoreTables {
  name: string;
  chunks: Database<Buffer, Buffer>;
  packs: Database<PackRecord, Buffer>;
  trash: Database<TrashEntry, string>;
  condemned: Database<CondemnedChunk, Buffer>;
  condemnedByPack: Database<Buffer, Buffer>;
}

export interface Tables {
  root: RootDatabase;
  meta: Database<unknown, string>;
  manifests: Database<Buffer, Buffer>;
  objects: Database<ObjectRecord, Buffer>;
  images: Database<ImageRecord, string>;
  imageIndexes: Record<ImageSortKey, Database<Buffer, (string | number | boolean)[]>>;
  members: Database<MemberRecord, [string, string]>;
  usage: Database<OwnerUsage, string>;
  tasks: Database<TaskRecord, string>;
  taskByImage: Database<string, [string, string]>;
  namespaces: Database<MetadefNamespaceRecord, string>;
  resourceTypes: Database<MetadefResourceTypeRecord, string>;
  leases: Database<unknown, number>;
  /** Per store, opened on first use. */
  store(name: string): StoreTables;
  /** The stores opened so far. */
  storeNames(): string[];
  /**
   * Forgets stores opened by a transaction that was rolled back: their databases were created
   * in it, and the handles would point at nothing. The next use opens them again.
   */
  forgetStores(names: Iterable<string>): void;
}

export function openTables(path: string, durable: boolean): Tables {
  const root = open({ path, maxDbs: 256, noSync: !durable });
  const bin = { keyEncoding: "binary", encoding: "binary" } as const;
  const indexes = {} as Record<ImageSortKey, Database<Buffer, (string | number | boolean)[]>>;
  for (const k of IMAGE_SORT_KEYS) indexes[k] = root.openDB({ name: `image_by_${k}`, encoding: "binary" });
  const stores = new Map<string, StoreTables>();
  return {
    root,
    meta: root.openDB({ name: "meta", encoding: "json" }),
    manifests: root.openDB<Buffer, Buffer>({ name: "manifests", ...bin }),
    objects: root.openDB<ObjectRecord, Buffer>({ name: "objects", keyEncoding: "binary", encoding: "json" }),
    images: root.openDB<ImageRecord, string>({ name: "images", encoding: "msgpack" }),
    imageIndexes: indexes,
    members: root.openDB<MemberRecord, [string, string]>({ name: "members", encoding: "json" }),
    usage: root.openDB<OwnerUsage, string>({ name: "usage", encoding: "json" }),
    tasks: root.openDB<TaskRecord, string>({ name: "tasks", encoding: "json" }),
    taskByImage: root.openDB<string, [string, string]>({ name: "task_by_image", encoding: "json" }),
    namespaces: root.openDB<MetadefNamespaceRecord, string>({ name: "metadef_namespaces", encoding: "json" }),
    resourceTypes: root.openDB<MetadefResourceTypeRecord, string>({
      name: "metadef_resource_types",
      encoding: "json",
    }),
    leases: root.openDB<unknown, number>({ name: "leases", keyEncoding: "uint32", encoding: "json" }),
    storeNames: () => [...stores.keys()],
    forgetStores(names: Iterable<string>): void {
      for (const n of names) stores.delete(n);
    },
    store(name: string): StoreTables {
      let s = stores.get(name);
      if (!s) {
        s = {
          name,
          chunks: root.openDB<Buffer, Buffer>({ name: `chunks@${name}`, ...bin }),
          packs: root.openDB<PackRecord, Buffer>({
            name: `packs@${name}`,
            keyEncoding: "binary",
            encoding: "json",
          }),
          trash: root.openDB<TrashEntry, string>({ name: `trash@${name}`, encoding: "json" }),
          condemned: root.openDB<CondemnedChunk, Buffer>({
            name: `condemned@${name}`,
            keyEncoding: "binary",
            encoding: "json",
          }),
          condemnedByPack: root.openDB<Buffer, Buffer>({ name: `doomed@${name}`, ...bin }),
        };
        stores.set(name, s);
      }
      return s;
    },
  };
}
