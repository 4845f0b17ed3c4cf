/**
 * Images: records with a status machine over the engine's objects. This is where an image
 * becomes `active` exactly when its data commits, and goes back to `queued` when an upload
 * fails, whatever the transport. No HTTP here; the API validates and shapes, this enforces.
 *
 * Status machine (as Glance's): queued → saving → active ⇄ deactivated; a failed or
 * interrupted upload returns saving → queued with nothing attached; deleting removes the
 * record and drops the image's hold on its object.
 *
 * ImageService is the front: record changes (create, update, activate/deactivate, delete) and
 * the record's data fields (withData, withoutData) are here; the rest, one job a module, beside
 * it: upload.ts (upload, stage), download.ts, convert-image.ts, image-stores.ts (per-store copy
 * and removal), image-data.ts (the holds on data), list.ts, image-stats.ts; who may see and do
 * what is image-access.ts.
 */

import { randomUUID } from "node:crypto";
import type { CatalogTx, RecordsReader } from "../catalog/catalog.js";
import { IMAGE_SORT_KEYS, type ImageRecord, type ImageStatus } from "../catalog/image-records.js";
import type { Member } from "../catalog/member-records.js";
import { RECORDS_TO_RENUMBER } from "../catalog/record-changes.js";
import type { CopyResult } from "../engine/copy.js";
import type { Engine } from "../engine/engine.js";
import type { CommittedObject } from "../engine/ingest.js";
import { describeStore, type StoreDescription } from "../engine/stores.js";
import { ConflictError, ForbiddenError } from "../errors.js";
import type { ConversionLimits } from "../formats/qemu-img.js";
import { DEFAULT_FORMAT_POLICY, type FormatPolicy } from "../formats/rules.js";
import { requeueAbandoned } from "./abandoned-uploads.js";
import { convertImage } from "./convert-image.js";
import { download, type ImageDownload } from "./download.js";
import { type Access, findImage, ImageNotFoundError } from "./image-access.js";
import { releaseData } from "./image-data.js";
import { type ImageStats, imageStats } from "./image-stats.js";
import { copyToStore, removeFromStore } from "./image-stores.js";
import { type ListQuery, listImages } from "./list.js";
import { type QuotaConfig, Quotas } from "./quotas.js";
import type { RecordWriteLog } from "./record-objects.js";
import { numberAboveStoredRecords } from "./record-restore.js";
import { RecordSaver } from "./record-saver.js";
import { stage, upload } from "./upload.js";

export type { ImageDownload } from "./download.js";
export type { Access } from "./image-access.js";
export { ImageNotFoundError } from "./image-access.js";
export { type ImageStats, imageStats } from "./image-stats.js";
export type { ListQuery, SortSpec } from "./list.js";
export { saveImageRecordObject } from "./record-objects.js";
export { IMAGE_SORT_KEYS };

export type NewImage = Partial<Omit<ImageRecord, "status" | "created_at" | "updated_at" | "object">>;

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
  /**
   * Put back the images a crash cut off at open (default true). False in a cluster worker: its
   * primary did it once before any worker served, and a worker (re)starting must not reset the
   * uploads in progress in the others.
   */
  recover?: boolean;
  /** This node, starting (the recovery counts its earlier life's leases dead: abandoned-uploads.ts). */
  node?: string;
  /** Where a failed write of an image's record object is told (default: nowhere). */
  log?: RecordWriteLog;
}

export class ImageService {
  readonly sizeCap: number;
  readonly osHashAlgo: string | null;
  readonly formats: FormatPolicy;
  readonly quotas: Quotas;
  readonly memberQuota: number;
  readonly dedupWriteThrough: boolean;
  /** Record objects this process failed to write (record-objects.ts), for the metrics. */
  recordWriteFailures = 0;
  private readonly recordSaver: RecordSaver;
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
    this.recordSaver = new RecordSaver(engine, (id, error) => {
      this.recordWriteFailures++;
      options.log?.warn({ image: id, err: error }, "could not write the image's record object");
    });
  }

  /** Resolves once the record objects of every change so far are saved (or failed): at close. */
  recordsSaved(): Promise<void> {
    return this.recordSaver.settled();
  }

  /**
   * Opens the image service on an engine, putting back to queued the images of uploads a crash
   * cut off (abandoned-uploads.ts), unless `recover` is false.
   */
  static async open(engine: Engine, options: ImageServiceOptions = {}): Promise<ImageService> {
    const svc = new ImageService(engine, options);
    // Every committed change of an image, whoever made it, saves its record object after.
    engine.catalog.afterImageChanges((changes) => svc.recordSaver.saveChanged(changes));
    if (options.recover !== false) {
      await requeueAbandoned(engine.catalog, () => svc.now(), options.node);
      if (await engine.catalog.getMeta(RECORDS_TO_RENUMBER)) {
        await numberAboveStoredRecords(engine);
        await engine.catalog.transact((tx) => tx.setMeta(RECORDS_TO_RENUMBER, false));
      }
    }
    return svc;
  }

  /** The image records, read outside any unit of work. */
  get records(): RecordsReader {
    return this.engine.catalog.records;
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
  async imageStats(id: string): Promise<ImageStats> {
    return imageStats(this.engine, await this.get(id));
  }

  /** The configured stores, default first then in read order. */
  stores(): StoreDescription[] {
    const def = this.engine.defaultStore;
    const rest = [...this.engine.stores.values()].filter((s) => s !== def);
    return [def, ...rest].map((s) => describeStore(s, s === def));
  }

  get(id: string, access?: Access): Promise<ImageRecord> {
    return findImage(this.records, id, access);
  }

  /**
   * The caller's membership of an image (any status), if it has one; read through `records`
   * (a unit of work's `tx` inside one).
   */
  async membership(
    imageId: string,
    project: string | null,
    records: RecordsReader = this.records,
  ): Promise<Member | undefined> {
    return project === null ? undefined : records.getMember(imageId, project);
  }

  /** GET /v2/info/usage: the owner's quotas and usage. */
  usage(owner: string | null) {
    return this.quotas.usage(this.records, owner);
  }

  async create(fields: NewImage): Promise<ImageRecord> {
    const now = this.now();
    const rec: ImageRecord = this.withoutData({
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
      created_at: now,
      updated_at: now,
      tags: [...new Set(fields.tags ?? [])],
      properties: { ...fields.properties },
    });
    await this.engine.catalog.transact(async (tx) => {
      if (await tx.getImage(rec.id))
        throw new ConflictError(`Image with identifier ${rec.id} already exists!`);
      await this.quotas.checkNewImage(tx, rec.owner);
      await tx.putImage(rec);
    });
    return rec;
  }

  /**
   * Applies `change` to a copy of the record and stores the result, in one unit of work (its
   * `tx` given to `change`, for any other record it reads or writes). `change` may throw to
   * refuse; nothing is written then. It may run more than once: it must keep no state of its
   * own across runs.
   */
  async update(
    id: string,
    change: (rec: ImageRecord, tx: CatalogTx) => ImageRecord | Promise<ImageRecord>,
    access?: Access,
  ): Promise<ImageRecord> {
    return this.engine.catalog.transact(async (tx) => {
      const rec = await findImage(tx, id, access);
      const next = await change(structuredClone(rec), tx);
      next.updated_at = this.now();
      await tx.putImage(next, rec);
      return next;
    });
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
   * The record with no data (withData's inverse): no size, virtual size, checksums, object or
   * stores. Status, staged data and updated_at are the caller's to set; the holds on the data
   * are image-data.ts's to drop, in the same unit of work.
   */
  withoutData<R extends Omit<ImageRecord, DataField>>(rec: R): R & Pick<ImageRecord, DataField> {
    return {
      ...rec,
      size: null,
      virtual_size: null,
      checksum: null,
      os_hash_algo: null,
      os_hash_value: null,
      object: null,
      stores: [],
    };
  }

  async remove(id: string, access?: Access): Promise<void> {
    await this.engine.catalog.transact(async (tx) => {
      const rec = await findImage(
        tx,
        id,
        access,
        () => new ImageNotFoundError(id, `Failed to find image ${id} to delete`),
      );
      if (rec.protected) throw new ForbiddenError(`Image ${id} is protected and cannot be deleted.`);
      await tx.removeImage(rec);
      await releaseData(tx, rec);
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

  /** Streams `source` in as the image's data (upload.ts). */
  upload(
    id: string,
    source: AsyncIterable<Uint8Array>,
    store?: string,
    access?: Access,
  ): Promise<ImageRecord> {
    return upload(this, id, source, store, access);
  }

  /** PUT /v2/images/{id}/stage: `source` staged for a glance-direct import (upload.ts). */
  stage(id: string, source: AsyncIterable<Uint8Array>, access?: Access): Promise<ImageRecord> {
    return stage(this, id, source, access);
  }

  /** Opens an image's data, or a range of it, for reading (download.ts). */
  download(
    id: string,
    range?: { start: number; end: number },
    access?: Access,
    prefer?: readonly string[],
  ): Promise<ImageDownload> {
    return download(this, id, range, access, prefer);
  }

  /** Converts an active image's data to another disk format (convert-image.ts). */
  convert(
    id: string,
    to: string,
    options: { limits?: ConversionLimits; scratchDir?: string } = {},
  ): Promise<ImageRecord> {
    return convertImage(this, id, to, options);
  }

  /** Copies an active image's data into `store` (image-stores.ts). */
  copyToStore(id: string, store: string): Promise<{ image: ImageRecord; copy?: CopyResult }> {
    return copyToStore(this, id, store);
  }

  /** Removes an image's data from one store, never its last (image-stores.ts). */
  removeFromStore(id: string, store: string, access?: Access): Promise<ImageRecord> {
    return removeFromStore(this, id, store, access);
  }

  /** One page of images (list.ts). */
  list(q: ListQuery): Promise<ImageRecord[]> {
    return listImages(this.records, q);
  }
}

/** The fields that describe an image's data: withData sets them, withoutData clears them. */
type DataField =
  | "size"
  | "virtual_size"
  | "checksum"
  | "os_hash_algo"
  | "os_hash_value"
  | "object"
  | "stores";
