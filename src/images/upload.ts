/**
 * Bytes in: an upload (PUT /file) makes a queued image `saving` while its bytes flow and
 * `active` in the unit of work that commits them; a stage (PUT /stage) keeps it `uploading`
 * with the data staged for a later glance-direct import. On any failure (the source erroring,
 * a limit, a rule, a crash) the image is queued again with nothing attached.
 */
import type { ImageRecord } from "../catalog/image-records.js";
import type { CommittedObject, IngestResult } from "../engine/ingest.js";
import { DEFAULT_LEASE_MS, retryInBackground } from "../engine/lease.js";
import { BadRequestError, ConflictError, GoneError, TooLargeError } from "../errors.js";
import { inspectStream } from "../formats/inspect-stream.js";
import { FormatRejectedError } from "../formats/rules.js";
import type { Access } from "./image-access.js";
import type { ImageService } from "./images.js";

/** Putting a record back after a failure must work on a full disk: it may use the reserve. */
const USE_RESERVE = { useReserve: true };

/**
 * Streams `source` in as the image's data, into `store` (default: the default store). The
 * image must be queued with its formats set; it is `saving` while the bytes flow and `active`
 * in the same unit of work that commits them.
 */
export function upload(
  svc: ImageService,
  id: string,
  source: AsyncIterable<Uint8Array>,
  store?: string,
  access?: Access,
  adoption?: Adoption,
): Promise<ImageRecord> {
  const into = svc.engine.store(store).name;
  return streamIn(svc, id, source, {
    status: "saving",
    into,
    access,
    adoption,
    inspect: svc.formats.inspect,
    check: (rec) => {
      if (!rec.disk_format || !rec.container_format) {
        throw new BadRequestError(
          "Properties disk_format, container_format must be set prior to saving data.",
        );
      }
    },
    commit: (rec, obj, virtualSize) => ({
      ...svc.withData(rec, obj, virtualSize),
      status: adoption?.status ?? "active",
      stores: [into],
    }),
  });
}

/**
 * PUT /v2/images/{id}/stage: streams `source` into the engine as the data of a later
 * glance-direct import (no staging file: the chunks are stored once, where the import will
 * find them). The image goes queued → uploading at once, keeps that status with the staged
 * data, and goes back to queued, with nothing held, if the stream fails.
 */
export function stage(
  svc: ImageService,
  id: string,
  source: AsyncIterable<Uint8Array>,
  access?: Access,
): Promise<ImageRecord> {
  const into = svc.engine.defaultStore.name;
  return streamIn(svc, id, source, {
    status: "uploading",
    into,
    access,
    // Inspected at import, when the disk format is fixed (Glance checks it there too).
    inspect: false,
    commit: (rec, obj) => ({
      ...rec,
      size: obj.size,
      staged: { object: obj.manifestId, store: into, size: obj.size },
      updated_at: svc.now(),
    }),
  });
}

/**
 * An upload of an image taken over from another service (adopt.ts): no quota applies (the
 * image exists already, under that service's quotas), and `verify` judges the data before it
 * commits (the digests that service recorded); throwing refuses it.
 */
export interface Adoption {
  verify(obj: CommittedObject): void;
  /** The status the data commits in (that service's: active or deactivated). */
  status: "active" | "deactivated";
  /** Told what the ingest stored, once it committed. */
  onIngested?: (r: IngestResult) => void;
}

interface StreamIn {
  status: "saving" | "uploading";
  into: string;
  access?: Access;
  inspect: boolean;
  check?: (rec: ImageRecord) => void;
  adoption?: Adoption;
  commit: (rec: ImageRecord, obj: CommittedObject, virtualSize: number | undefined) => ImageRecord;
}

/**
 * The body of upload and stage: the queued image takes `how.status` while `source` streams
 * into the engine (through the format inspector if `how.inspect`), within the size cap and
 * the owner's quota room; the record `how.commit` makes is written in the unit of work that
 * commits the data. On any failure (the source erroring, a limit) it is queued again; after a
 * crash, by whichever node sees its lease gone (abandoned-uploads.ts).
 */
function streamIn(
  svc: ImageService,
  id: string,
  source: AsyncIterable<Uint8Array>,
  how: StreamIn,
): Promise<ImageRecord> {
  return svc.engine.leased(`upload of image ${id}`, (lease) => streamUnder(svc, id, source, how, lease));
}

/** streamIn under its lease, recorded on the image while the bytes flow. */
async function streamUnder(
  svc: ImageService,
  id: string,
  source: AsyncIterable<Uint8Array>,
  how: StreamIn,
  lease: number,
): Promise<ImageRecord> {
  const cat = svc.engine.catalog;
  const staging = how.status === "uploading";
  let room = Number.POSITIVE_INFINITY;
  const started = await svc.update(
    id,
    async (rec, tx) => {
      if (rec.status !== "queued") {
        throw new ConflictError(`Image status transition from ${rec.status} to ${how.status} is not allowed`);
      }
      how.check?.(rec);
      if (!how.adoption) room = await svc.quotas.checkUploadStart(tx, rec.owner, staging);
      return { ...rec, status: how.status, upload_lease: lease };
    },
    how.access,
  );
  // The same image and upload: not one deleted and re-created with this id meanwhile, nor
  // one another node requeued (this upload's lease lapsed) and another upload took since.
  const isOurs = (rec: ImageRecord | undefined): rec is ImageRecord =>
    rec?.created_at === started.created_at && rec.status === how.status && rec.upload_lease === lease;
  let committed: ImageRecord | undefined;
  // The inspector rides along with the chunker; its verdict is read inside the commit, so a
  // rejected image commits nothing and goes back to queued like any failed upload.
  const inspected = how.inspect
    ? inspectStream(source, started.disk_format as string, svc.formats)
    : undefined;
  try {
    const ingested = await svc.engine.ingest(inspected?.pieces ?? source, {
      maxBytes: Math.min(svc.sizeCap, room),
      store: how.into,
      writeThrough: svc.dedupWriteThrough,
      inCommit: async (tx, obj) => {
        const rec = await tx.getImage(id);
        if (!isOurs(rec)) {
          throw new GoneError(`Image ${id} was deleted during the ${staging ? "staging" : "upload"}.`);
        }
        const verdict = inspected?.result();
        if (verdict && verdict.violations.length > 0) throw new FormatRejectedError(verdict.violations);
        how.adoption?.verify(obj);
        // Other uploads of the owner's may have committed meanwhile.
        if (!how.adoption) await svc.quotas.checkUploadCommit(tx, rec.owner, obj.size, staging);
        committed = withoutLease(how.commit(rec, obj, verdict?.detection.virtualSize));
        await tx.putImage(committed, rec);
      },
    });
    how.adoption?.onIngested?.(ingested);
  } catch (e) {
    // The client is told why the upload failed at once. Putting the image back may fail too
    // (the catalog unreachable: the failure's own cause, often): it is tried again every
    // second until the catalog is back, so the image is queued again within a second of it.
    const putBack = () =>
      cat.transact(async (tx) => {
        const rec = await tx.getImage(id);
        if (isOurs(rec))
          await tx.putImage({ ...withoutLease(rec), status: "queued", updated_at: svc.now() }, rec);
      }, USE_RESERVE);
    await putBack().catch(() => retryInBackground(putBack, DEFAULT_LEASE_MS));
    // The stream outgrew the owner's room rather than the size cap: the quota says why.
    if (e instanceof TooLargeError && room < svc.sizeCap) {
      await svc.quotas.checkUploadCommit(cat.records, started.owner, room + 1, staging);
    }
    throw e;
  }
  return committed as ImageRecord;
}

function withoutLease(rec: ImageRecord): ImageRecord {
  const { upload_lease: _, ...rest } = rec;
  return rest;
}
