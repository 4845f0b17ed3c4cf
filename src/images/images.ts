/**
 * Images: records with a status machine over the engine's objects. This is where an image
 * becomes `active` exactly when its data commits, and goes back to `queued` when an upload
 * fails, whatever the transport. No HTTP here; the API validates and shapes, this enforces.
 *
 * Status machine (as Glance's): queued → saving → active ⇄ deactivated; a failed or
 * interrupted upload returns saving → queued with nothing attached; deleting removes the
 * record and drops the image's hold on its object.
 */

import { randomUUID } from "node:crypto";
import { holders } from "../catalog/catalog.js";
import {
  getImage,
  IMAGE_SORT_KEYS,
  type ImageRecord,
  type ImageSortKey,
  type ImageStatus,
  type IndexValue,
  indexValue,
  putImage,
  removeImage,
  scanImageIndex,
} from "../catalog/image-records.js";
import { getMember, type Member } from "../catalog/member-records.js";
import { convertObject } from "../engine/convert.js";
import type { CopyResult } from "../engine/copy.js";
import type { Engine } from "../engine/engine.js";
import type { CommittedObject } from "../engine/ingest.js";
import type { ReadPiece } from "../engine/read.js";
import type { ObjectStats } from "../engine/stats.js";
import { describeStore, type StoreDescription } from "../engine/stores.js";
import {
  BadRequestError,
  ConflictError,
  DamagedDataError,
  ForbiddenError,
  GoneError,
  NotFoundError,
  TooLargeError,
} from "../errors.js";
import { inspectStream } from "../formats/inspect-stream.js";
import type { ConversionLimits } from "../formats/qemu-img.js";
import { DEFAULT_FORMAT_POLICY, type FormatPolicy, FormatRejectedError } from "../formats/rules.js";
import { type QuotaConfig, Quotas } from "./quotas.js";

export type NewImage = Partial<Omit<ImageRecord, "status" | "created_at" | "updated_at" | "object">>;

export interface SortSpec {
  key: ImageSortKey;
  dir: "asc" | "desc";
}

export interface ListQuery {
  /** Sort keys in priority order; created_at desc and id desc are appended as tie-breakers. */
  sort: SortSpec[];
  limit: number;
  /** List the images after this one (in the sort order). */
  marker?: string;
  /** Keeps the records the listing shows. */
  match: (rec: ImageRecord) => boolean;
  /** Whether the caller sees a record: a marker it does not see is as unknown as a missing one. */
  sees?: (rec: ImageRecord) => boolean;
}

export interface ImageDownload {
  image: ImageRecord;
  /** The bytes (or the requested range), in pooled pieces; undefined when the image has no data. */
  body?: AsyncGenerator<ReadPiece>;
  start: number;
  end: number;
}

/**
 * What the caller may see and do, checked against the current record inside the transaction
 * that acts on it (the API builds it from the request's identity and the access policy).
 */
export interface Access {
  /** Whether the caller sees the image at all; one it does not see is reported missing. */
  sees(rec: ImageRecord): boolean;
  /** Throws (ForbiddenError) when the caller sees the image but may not do this to it. */
  check(rec: ImageRecord): void;
}

export class ImageNotFoundError extends NotFoundError {
  constructor(
    readonly imageId: string,
    message = `No image found with ID ${imageId}`,
  ) {
    super(`image ${imageId}`);
    this.message = message;
  }
}

/** Deletes, and putting records back after a failure, must work on a full disk: they may use the reserve. */
const USE_RESERVE = { useReserve: true };

export interface ImageServiceOptions {
  /** Largest image accepted, in bytes (Glance's image_size_cap; default 1 TiB). */
  sizeCap?: number;
  /**
   * The name reported as os_hash_algo (Glance reports hashlib names, e.g. sha3_256) for the
   * engine's second hash algorithm (a Node crypto name, e.g. sha3-256). Default: the same.
   */
  osHashAlgo?: string;
  /** Format inspection and safety rules for uploads (default: all rules on, as Glance). */
  formats?: FormatPolicy;
  /** Per-project quotas (default: none). */
  quotas?: QuotaConfig;
  /** Most members per image (Glance's image_member_quota; default 128, negative: no limit). */
  memberQuota?: number;
  /**
   * Uploads and stages write every chunk as if new (engine ingest's writeThrough), so their
   * timing does not reveal what other projects stored (docs/security.md). Default false.
   */
  dedupWriteThrough?: boolean;
}

export class ImageService {
  readonly sizeCap: number;
  readonly osHashAlgo: string | null;
  readonly formats: FormatPolicy;
  readonly quotas: Quotas;
  readonly memberQuota: number;
  readonly dedupWriteThrough: boolean;
  private lastStamp = 0;

  private constructor(
    readonly engine: Engine,
    options: ImageServiceOptions,
  ) {
    this.sizeCap = options.sizeCap ?? 1024 ** 4;
    this.osHashAlgo = options.osHashAlgo ?? engine.hashAlgorithms[1] ?? null;
    this.formats = options.formats ?? DEFAULT_FORMAT_POLICY;
    this.quotas = new Quotas(options.quotas);
    this.memberQuota = options.memberQuota ?? 128;
    this.dedupWriteThrough = options.dedupWriteThrough ?? false;
  }

  /**
   * Opens the image service on an engine. An image left `saving`, or `uploading` without staged
   * data, can only be the trace of an upload or stage cut off by a crash (they do not outlive
   * the process), so it goes back to queued.
   */
  static async open(engine: Engine, options: ImageServiceOptions = {}): Promise<ImageService> {
    const svc = new ImageService(engine, options);
    const cat = engine.catalog;
    await cat.transaction(() => {
      // The status index holds them together: no scan of every record at start. Ids are
      // collected first, since moving a record moves its index entry.
      const cut: string[] = [];
      for (const status of ["saving", "uploading"] as const) {
        for (const { value, id } of scanImageIndex(cat, "status", "asc", status)) {
          if (value !== status) break;
          cut.push(id);
        }
      }
      for (const id of cut) {
        const rec = getImage(cat, id);
        // Staged data that committed is kept: the image waits for its import.
        if (rec && !rec.staged) putImage(cat, { ...rec, status: "queued" }, rec);
      }
    }, USE_RESERVE);
    return svc;
  }

  /**
   * Timestamps strictly increase within the process, so "newest first" is the order of
   * creation (and of updates) even for images made in the same millisecond.
   */
  now(): string {
    this.lastStamp = Math.max(Date.now(), this.lastStamp + 1);
    return new Date(this.lastStamp).toISOString();
  }

  /** An image's dedup accounting (imageStats). */
  imageStats(id: string): ImageStats {
    return imageStats(this.engine, this.get(id));
  }

  /** The configured stores, default first then in read order. */
  stores(): StoreDescription[] {
    const def = this.engine.defaultStore;
    const rest = [...this.engine.stores.values()].filter((s) => s !== def);
    return [def, ...rest].map((s) => describeStore(s, s === def));
  }

  get(id: string, access?: Access): ImageRecord {
    return this.found(getImage(this.engine.catalog, id), id, access);
  }

  /** The record if there and seen by the caller (else `notFound`), once access allows. */
  private found(
    rec: ImageRecord | undefined,
    id: string,
    access: Access | undefined,
    notFound = () => new ImageNotFoundError(id),
  ): ImageRecord {
    if (!rec || (access && !access.sees(rec))) throw notFound();
    access?.check(rec);
    return rec;
  }

  /** The caller's membership of an image (any status), if it has one. */
  membership(imageId: string, project: string | null): Member | undefined {
    return project === null ? undefined : getMember(this.engine.catalog, imageId, project);
  }

  /** GET /v2/info/usage: the owner's quotas and usage. */
  usage(owner: string | null) {
    return this.quotas.usage(this.engine.catalog, owner);
  }

  async create(fields: NewImage): Promise<ImageRecord> {
    const now = this.now();
    const rec: ImageRecord = {
      id: fields.id ?? randomUUID(),
      name: fields.name ?? null,
      status: "queued",
      visibility: fields.visibility ?? "shared",
      protected: fields.protected ?? false,
      os_hidden: fields.os_hidden ?? false,
      owner: fields.owner ?? null,
      disk_format: fields.disk_format ?? null,
      container_format: fields.container_format ?? null,
      min_disk: fields.min_disk ?? 0,
      min_ram: fields.min_ram ?? 0,
      size: null,
      virtual_size: null,
      checksum: null,
      os_hash_algo: null,
      os_hash_value: null,
      created_at: now,
      updated_at: now,
      tags: [...new Set(fields.tags ?? [])],
      properties: { ...fields.properties },
      object: null,
      stores: [],
    };
    const cat = this.engine.catalog;
    await cat.transaction(() => {
      if (getImage(cat, rec.id)) throw new ConflictError(`Image with identifier ${rec.id} already exists!`);
      this.quotas.checkNewImage(cat, rec.owner);
      putImage(cat, rec);
    });
    return rec;
  }

  /**
   * Applies `change` to a copy of the record and stores the result, in one transaction.
   * `change` may throw to refuse; nothing is written then.
   */
  async update(id: string, change: (rec: ImageRecord) => ImageRecord, access?: Access): Promise<ImageRecord> {
    const cat = this.engine.catalog;
    return cat.transaction(() => {
      const rec = this.found(getImage(cat, id), id, access);
      const next = change(structuredClone(rec));
      next.updated_at = this.now();
      putImage(cat, next, rec);
      return next;
    });
  }

  /**
   * Streams `source` in as the image's data, into `store` (default: the default store). The
   * image must be queued with its formats set; it is `saving` while the bytes flow and
   * `active` in the same transaction that commits them. On any failure (the source erroring,
   * the size cap, a crash) it is queued again.
   */
  async upload(
    id: string,
    source: AsyncIterable<Uint8Array>,
    store?: string,
    access?: Access,
  ): Promise<ImageRecord> {
    const into = this.engine.store(store).name;
    return this.streamIn(id, source, {
      status: "saving",
      into,
      access,
      inspect: this.formats.inspect,
      check: (rec) => {
        if (!rec.disk_format || !rec.container_format) {
          throw new BadRequestError(
            "Properties disk_format, container_format must be set prior to saving data.",
          );
        }
      },
      commit: (rec, obj, virtualSize) => ({
        ...this.withData(rec, obj, virtualSize),
        status: "active",
        stores: [into],
      }),
    });
  }

  /**
   * The body of upload and stage: the queued image takes `how.status` while `source` streams
   * into the engine (through the format inspector if `how.inspect`), within the size cap and
   * the owner's quota room; the record `how.commit` makes is written in the transaction that
   * commits the data. On any failure (the source erroring, a limit, a crash) it is queued again.
   */
  private async streamIn(
    id: string,
    source: AsyncIterable<Uint8Array>,
    how: {
      status: "saving" | "uploading";
      into: string;
      access?: Access;
      inspect: boolean;
      check?: (rec: ImageRecord) => void;
      commit: (rec: ImageRecord, obj: CommittedObject, virtualSize: number | undefined) => ImageRecord;
    },
  ): Promise<ImageRecord> {
    const cat = this.engine.catalog;
    const staging = how.status === "uploading";
    let room = Number.POSITIVE_INFINITY;
    const started = await this.update(
      id,
      (rec) => {
        if (rec.status !== "queued") {
          throw new ConflictError(
            `Image status transition from ${rec.status} to ${how.status} is not allowed`,
          );
        }
        how.check?.(rec);
        room = this.quotas.checkUploadStart(cat, rec.owner, staging);
        return { ...rec, status: how.status };
      },
      how.access,
    );
    // The same image, not one deleted and re-created with this id meanwhile.
    const isOurs = (rec: ImageRecord | undefined): rec is ImageRecord =>
      rec?.created_at === started.created_at && rec.status === how.status;
    let committed: ImageRecord | undefined;
    // The inspector rides along with the chunker; its verdict is read inside the commit, so a
    // rejected image commits nothing and goes back to queued like any failed upload.
    const inspected = how.inspect
      ? inspectStream(source, started.disk_format as string, this.formats)
      : undefined;
    try {
      await this.engine.ingest(inspected?.pieces ?? source, {
        maxBytes: Math.min(this.sizeCap, room),
        store: how.into,
        writeThrough: this.dedupWriteThrough,
        inCommit: (obj) => {
          const rec = getImage(cat, id);
          if (!isOurs(rec)) {
            throw new GoneError(`Image ${id} was deleted during the ${staging ? "staging" : "upload"}.`);
          }
          const verdict = inspected?.result();
          if (verdict && verdict.violations.length > 0) throw new FormatRejectedError(verdict.violations);
          // Other uploads of the owner's may have committed meanwhile.
          this.quotas.checkUploadCommit(cat, rec.owner, obj.size, staging);
          committed = how.commit(rec, obj, verdict?.detection.virtualSize);
          putImage(cat, committed, rec);
        },
      });
    } catch (e) {
      // The client is told why the upload failed, even if putting the image back fails too
      // (then a restart puts it back).
      await cat
        .transaction(() => {
          const rec = getImage(cat, id);
          if (isOurs(rec)) putImage(cat, { ...rec, status: "queued", updated_at: this.now() }, rec);
        }, USE_RESERVE)
        .catch(() => {});
      // The stream outgrew the owner's room rather than the size cap: the quota says why.
      if (e instanceof TooLargeError && room < this.sizeCap) {
        this.quotas.checkUploadCommit(cat, started.owner, room + 1, staging);
      }
      throw e;
    }
    return committed as ImageRecord;
  }

  /**
   * Converts an active image's data to another disk format with qemu-img (engine/convert.ts):
   * the image stays active on its old data meanwhile, then takes the new data, disk_format,
   * sizes and checksums in the one transaction that commits them, and its old data is
   * released. The step Glance's image_conversion import plugin performs. The result is in the
   * image's first store only (copies to its others are for the caller to make again).
   */
  async convert(id: string, to: string, options: { limits?: ConversionLimits; scratchDir?: string } = {}) {
    const cat = this.engine.catalog;
    const rec = this.get(id);
    if (rec.status !== "active" || !rec.object) {
      throw new ConflictError(`Image ${id} is ${rec.status}; only active images can be converted`);
    }
    if (rec.disk_format === to) return rec;
    let committed: ImageRecord | undefined;
    const store = rec.stores[0] ?? this.engine.defaultStore.name;
    await convertObject(this.engine, rec.object, {
      from: rec.disk_format as string,
      to,
      policy: this.formats,
      maxBytes: this.sizeCap,
      store,
      ...options,
      inCommit: (obj, inspection) => {
        const now = getImage(cat, id);
        if (now?.created_at !== rec.created_at || now.object !== rec.object || now.status !== "active") {
          throw new ConflictError(`Image ${id} changed during its conversion`);
        }
        const data = this.withData(now, obj, inspection.detection.virtualSize);
        committed = { ...data, disk_format: to, stores: [store] };
        putImage(cat, committed, now);
        this.releaseData(now);
      },
    });
    return committed as ImageRecord;
  }

  /** The record with `obj` as its data: size, virtual size, checksums, object id. */
  withData(
    rec: ImageRecord,
    obj: Pick<CommittedObject, "manifestId" | "size" | "hashes">,
    virtualSize: number | undefined,
  ): ImageRecord {
    const [md5, osHash] = this.engine.hashAlgorithms;
    return {
      ...rec,
      size: obj.size,
      virtual_size: virtualSize ?? null,
      checksum: obj.hashes[md5 as string] ?? null,
      os_hash_algo: this.osHashAlgo,
      os_hash_value: (osHash && obj.hashes[osHash]) ?? null,
      object: obj.manifestId,
      updated_at: this.now(),
    };
  }

  /**
   * Opens an image's data for reading, or a range [start, end) of it. An image without data
   * answers with no body (Glance's 204).
   */
  download(id: string, range?: { start: number; end: number }, access?: Access): ImageDownload {
    const image = this.get(id, access);
    if (!image.object || (image.status !== "active" && image.status !== "deactivated")) {
      return { image, start: 0, end: 0 };
    }
    // Refused before a byte is sent: a response cut off mid-way is all a client could get later.
    if (this.engine.stat(image.object).damaged) throw new DamagedDataError(`The data of image ${id}`);
    const start = range?.start ?? 0;
    const end = range?.end ?? (image.size as number);
    return { image, start, end, body: this.engine.readPooled(image.object, { start, end }) };
  }

  async remove(id: string, access?: Access): Promise<void> {
    const cat = this.engine.catalog;
    await cat.transaction(
      () => {
        const rec = this.found(
          getImage(cat, id),
          id,
          access,
          () => new ImageNotFoundError(id, `Failed to find image ${id} to delete`),
        );
        if (rec.protected) throw new ForbiddenError(`Image ${id} is protected and cannot be deleted.`);
        removeImage(cat, rec);
        this.releaseData(rec);
      },
      { useReserve: true },
    );
  }

  /**
   * Inside a transaction: drops the image's hold on its data in every store it is in, and on
   * data staged for an import.
   */
  releaseData(rec: ImageRecord): void {
    if (rec.staged) this.releaseStaged(rec.staged);
    if (!rec.object) return;
    const id = Buffer.from(rec.object, "hex");
    for (const s of rec.stores) this.engine.catalog.releaseObjectInTransaction(s, id);
  }

  /** Inside a transaction: drops the hold an import's staged data has. */
  releaseStaged(staged: NonNullable<ImageRecord["staged"]>): void {
    this.engine.catalog.releaseObjectInTransaction(staged.store, Buffer.from(staged.object, "hex"));
  }

  /**
   * PUT /v2/images/{id}/stage: streams `source` into the engine as the data of a later
   * glance-direct import (no staging file: the chunks are stored once, where the import will
   * find them). The image goes queued → uploading at once, keeps that status with the staged
   * data, and goes back to queued, with nothing held, if the stream fails.
   */
  async stage(id: string, source: AsyncIterable<Uint8Array>, access?: Access): Promise<ImageRecord> {
    const into = this.engine.defaultStore.name;
    return this.streamIn(id, source, {
      status: "uploading",
      into,
      access,
      // Inspected at import, when the disk format is fixed (Glance checks it there too).
      inspect: false,
      commit: (rec, obj) => ({
        ...rec,
        size: obj.size,
        staged: { object: obj.manifestId, store: into, size: obj.size },
        updated_at: this.now(),
      }),
    });
  }

  /**
   * Copies an active image's data into `store`, moving only the chunks that store lacks
   * (engine copy); the image lists the store once the copy commits. Already there: no-op.
   */
  async copyToStore(id: string, store: string): Promise<{ image: ImageRecord; copy?: CopyResult }> {
    const cat = this.engine.catalog;
    const to = this.engine.store(store).name;
    const rec = this.get(id);
    if (rec.status !== "active" || !rec.object) {
      throw new ConflictError(`Image ${id} is ${rec.status}; only active images can be copied`);
    }
    if (rec.stores.includes(to)) return { image: rec };
    let committed: ImageRecord | undefined;
    const copy = await this.engine.copy(rec.object, to, {
      inCommit: () => {
        const now = getImage(cat, id);
        if (now?.created_at !== rec.created_at || now.object !== rec.object || now.stores.includes(to)) {
          throw new ConflictError(`Image ${id} changed during its copy to ${to}`);
        }
        committed = { ...now, stores: [...now.stores, to], updated_at: this.now() };
        putImage(cat, committed, now);
      },
    });
    return { image: committed as ImageRecord, copy };
  }

  /**
   * Removes an image's data from one store, as Glance's DELETE /v2/stores/{store}/{image}:
   * only for an active image, never its last copy (403, Glance's words), and 404 for a store
   * it is not in.
   */
  async removeFromStore(id: string, store: string, access?: Access): Promise<ImageRecord> {
    const cat = this.engine.catalog;
    return cat.transaction(() => {
      const rec = this.found(getImage(cat, id), id, access);
      if (rec.status !== "active") {
        throw new ConflictError(
          "It's not allowed to remove image data from store if image status is not 'active'",
        );
      }
      if (rec.stores.length <= 1) {
        throw new ForbiddenError(
          "Cannot delete image data from the only store containing it. Consider deleting the image instead.",
        );
      }
      if (!rec.stores.includes(store)) {
        throw new ImageNotFoundError(
          id,
          "The image cannot be deleted because it does not exist in the requested store.",
        );
      }
      const next = { ...rec, stores: rec.stores.filter((s) => s !== store), updated_at: this.now() };
      putImage(cat, next, rec);
      cat.releaseObjectInTransaction(store, Buffer.from(rec.object as string, "hex"));
      return next;
    }, USE_RESERVE);
  }

  deactivate(id: string, access?: Access): Promise<ImageRecord> {
    return this.toggle(id, "active", "deactivated", "deactivate", access);
  }

  reactivate(id: string, access?: Access): Promise<ImageRecord> {
    return this.toggle(id, "deactivated", "active", "reactivate", access);
  }

  /** from → to; already `to` is a no-op (Glance's actions are idempotent); any other status 403. */
  private toggle(
    id: string,
    from: ImageStatus,
    to: ImageStatus,
    verb: string,
    access: Access | undefined,
  ): Promise<ImageRecord> {
    return this.update(
      id,
      (rec) => {
        if (rec.status === to) return rec;
        if (rec.status !== from)
          throw new ForbiddenError(`Not allowed to ${verb} image in status '${rec.status}'`);
        return { ...rec, status: to };
      },
      access,
    );
  }

  /**
   * One page of images: walks the index of the first sort key from the marker, sorts each
   * run of equal values by the remaining keys, and stops as soon as the page is full.
   */
  list(q: ListQuery): ImageRecord[] {
    if (q.limit <= 0) return [];
    const cat = this.engine.catalog;
    const sort = [...q.sort];
    for (const key of ["created_at", "id"] as const) {
      if (!sort.some((s) => s.key === key)) sort.push({ key, dir: "desc" });
    }
    const [primary, ...rest] = sort;
    const cmpRest = (a: ImageRecord, b: ImageRecord): number => {
      for (const s of rest) {
        const c = compareValues(indexValue(a, s.key), indexValue(b, s.key));
        if (c !== 0) return s.dir === "asc" ? c : -c;
      }
      return 0;
    };
    let marker: ImageRecord | undefined;
    let from: IndexValue | undefined;
    if (q.marker !== undefined) {
      marker = getImage(cat, q.marker);
      if (!marker || (q.sees && !q.sees(marker)))
        throw new BadRequestError(`No image found with ID ${q.marker}`);
      from = indexValue(marker, primary.key);
    }
    const out: ImageRecord[] = [];
    let group: ImageRecord[] = [];
    let groupValue: IndexValue | undefined;
    const flush = (): boolean => {
      group.sort(cmpRest);
      for (const r of group) {
        if (marker && groupValue === from && cmpRest(r, marker) <= 0) continue;
        if (q.match(r)) out.push(r);
        if (out.length >= q.limit) return true;
      }
      group = [];
      return false;
    };
    for (const { value, id } of scanImageIndex(cat, primary.key, primary.dir, from)) {
      if (group.length > 0 && value !== groupValue && flush()) return out;
      groupValue = value;
      const rec = getImage(cat, id);
      if (rec) group.push(rec);
    }
    flush();
    return out.slice(0, q.limit);
  }
}

/** A total order on index values: false (null) < booleans < numbers < strings. */
function compareValues(a: IndexValue, b: IndexValue): number {
  const rank = (v: IndexValue) => (typeof v === "boolean" ? 0 : typeof v === "number" ? 1 : 2);
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  return a < b ? -1 : a > b ? 1 : 0;
}

export { IMAGE_SORT_KEYS };

export type ImageStats = { image: string } & Partial<ObjectStats> & { imagesWithSameData?: number };

/**
 * An image's dedup accounting: its object's (what it alone references, what it shares, in its
 * first store) and how many other images have the very same data. Read-only: usable beside a
 * running server.
 */
export function imageStats(engine: Engine, rec: ImageRecord): ImageStats {
  if (!rec.object) return { image: rec.id };
  const obj = engine.stat(rec.object);
  return {
    image: rec.id,
    ...engine.objectStats(rec.object, rec.stores[0]),
    imagesWithSameData: holders(obj) - 1,
  };
}
