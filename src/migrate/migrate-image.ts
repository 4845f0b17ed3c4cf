/**
 * One Glance image brought into Tessera, or brought up to date there: its record, its data
 * (only when Tessera does not already hold exactly the data Glance recorded), its members, then
 * its status and times. Each step writes only what differs, so a second run writes nothing and
 * a run cut off anywhere is finished by the next: an upload cut off leaves the image queued
 * without data (the upload's own rule), and the next run streams it again. An image whose data
 * does not come in (refused, or deleted in Glance meanwhile) is not left behind in Tessera.
 */
import {
  abandonAdoption,
  adoptData,
  adoptMembers,
  adoptRecord,
  adoptStatus,
  DataMismatchError,
  sameFields,
} from "../images/adopt.js";
import type { ImageService } from "../images/images.js";
import {
  adoptedFields,
  adoptedMember,
  disposition,
  expectedData,
  isoTime,
  sameData,
} from "./glance-image.js";
import { type GlanceImage, type GlanceSource, GlanceSourceError } from "./glance-source.js";

export type Outcome =
  /** Its data streamed in and verified: `bytes` read from Glance, `stored` new in the store. */
  | { result: "copied"; bytes: number; stored: number }
  /** New in Tessera, without data (queued or killed in Glance). */
  | { result: "created" }
  /** Its record, members or status brought up to date; no data to copy. */
  | { result: "updated" }
  | { result: "unchanged" }
  /** Deleted in Glance (before or while it was migrated): nothing of it left in Tessera. */
  | { result: "skipped"; why: string }
  /** Not migrated; `mismatch`: its data differed from Glance's digests (never activated). */
  | { result: "failed"; why: string; mismatch?: boolean };

const GONE: Outcome = { result: "skipped", why: "deleted in Glance while it was migrated" };

/** Migrates `image`; `onBytes` is told of the data bytes as they are read. */
export async function migrateImage(
  svc: ImageService,
  glance: GlanceSource,
  image: GlanceImage,
  onBytes: (n: number) => void,
): Promise<Outcome> {
  const d = disposition(image);
  if (d.kind === "deleted") return { result: "skipped", why: `deleted in Glance (${image.status})` };
  if (d.kind === "busy") {
    return {
      result: "failed",
      why: `its data is on its way into Glance (status ${d.status}): run again later`,
    };
  }
  const id = image.id;
  const fields = adoptedFields(image);
  const before = await svc.records.getImage(id);
  if (before && before.status !== "queued" && before.object === null && before.status !== "killed") {
    return { result: "failed", why: `an upload into Tessera is in progress (status ${before.status})` };
  }
  const expected = expectedData(image);
  const copying = d.withData && !(before && sameData(before, expected));
  if (copying && before && before.object !== null) {
    return { result: "failed", why: `Tessera holds other data for this image (md5 ${before.checksum})` };
  }
  try {
    // The data is asked for first: an image deleted in Glance since it was listed leaves no record.
    const body = copying ? await dataOf(glance, id, expected.size) : undefined;
    const changed = !before || !sameFields(before, fields);
    await adoptRecord(svc, fields);
    let copied: { bytes: number; stored: number } | undefined;
    if (body) {
      copied = { bytes: 0, stored: 0 };
      const counter = copied;
      const counted = counting(body, (n) => {
        counter.bytes += n;
        onBytes(n);
      });
      try {
        const status = d.status as "active" | "deactivated";
        await adoptData(svc, id, counted, expected, status, (r) => {
          counter.stored = r.bytesStored;
        });
      } catch (e) {
        await abandonAdoption(svc, id);
        if (isGone(e)) return GONE;
        return { result: "failed", why: (e as Error).message, mismatch: e instanceof DataMismatchError };
      }
    }
    // Glance shows members of shared images only; others' members are dropped here (their
    // access would come back if the image were shared again in Tessera, and not in Glance).
    const members =
      image.visibility === "shared" ? (await glance.members(id)).map((m) => adoptedMember(id, m)) : [];
    const membersChanged = await adoptMembers(svc, id, members);
    const rec = await svc.records.getImage(id);
    const updatedAt = isoTime(image.updated_at);
    const statusChanged = rec?.status !== d.status || rec.updated_at !== updatedAt;
    await adoptStatus(svc, id, d.status, updatedAt);
    if (copied) return { result: "copied", ...copied };
    if (!before) return { result: "created" };
    return { result: changed || membersChanged || statusChanged ? "updated" : "unchanged" };
  } catch (e) {
    if (!isGone(e)) throw e;
    await abandonAdoption(svc, id);
    return GONE;
  }
}

/** The image's data from Glance; an empty stream for an image of 0 bytes Glance has none of. */
async function dataOf(
  glance: GlanceSource,
  id: string,
  size: number | null,
): Promise<AsyncIterable<Uint8Array>> {
  const body = (await glance.data(id)) ?? (size === 0 ? emptyBody() : undefined);
  if (!body) throw new GlanceSourceError(`Glance has no data for image ${id}, which it shows with data`);
  return body;
}

/** Glance answering 404: the image was deleted there after it was listed. */
function isGone(e: unknown): boolean {
  return e instanceof GlanceSourceError && e.status === 404;
}
async function* counting(
  source: AsyncIterable<Uint8Array>,
  onBytes: (n: number) => void,
): AsyncGenerator<Uint8Array> {
  for await (const piece of source) {
    onBytes(piece.length);
    yield piece;
  }
}

async function* emptyBody(): AsyncGenerator<Uint8Array> {}
