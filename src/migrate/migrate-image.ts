/**
 * One Glance image brought into Tessera, or brought up to date there: its record, its data
 * (only when Tessera does not already hold exactly the data Glance recorded), its members, then
 * its status and times. Each step writes only what differs, so a second run writes nothing and
 * a run cut off anywhere is finished by the next: an upload cut off leaves the image queued
 * without data (the upload's own rule), and the next run streams it again.
 */
import {
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
import type { GlanceImage, GlanceSource } from "./glance-source.js";

export type Outcome =
  /** Its data streamed in and verified (`bytes` read from Glance). */
  | { result: "copied"; bytes: number }
  /** Its record, members or status written; no data to copy. */
  | { result: "updated" }
  | { result: "unchanged" }
  /** Deleted in Glance. */
  | { result: "skipped"; why: string }
  /** Not migrated; `mismatch`: its data differed from Glance's digests (never activated). */
  | { result: "failed"; why: string; mismatch?: boolean };

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
  let changed = !before || !sameFields(before, fields);
  let rec = await adoptRecord(svc, fields);

  const expected = expectedData(image);
  let copied: number | undefined;
  if (d.withData && !sameData(rec, expected)) {
    if (rec.object !== null) {
      return { result: "failed", why: `Tessera holds other data for this image (md5 ${rec.checksum})` };
    }
    const body = (await glance.data(id)) ?? (expected.size === 0 ? emptyBody() : undefined);
    if (!body) return { result: "failed", why: `Glance has no data for this ${image.status} image` };
    copied = 0;
    const counted = counting(body, (n) => {
      copied = (copied as number) + n;
      onBytes(n);
    });
    try {
      rec = await adoptData(svc, id, counted, expected);
    } catch (e) {
      return { result: "failed", why: (e as Error).message, mismatch: e instanceof DataMismatchError };
    }
  }

  if (image.visibility === "shared") {
    const members = (await glance.members(id)).map((m) => adoptedMember(id, m));
    changed = (await adoptMembers(svc, id, members)) || changed;
  }
  const updatedAt = isoTime(image.updated_at);
  changed = changed || rec.status !== d.status || rec.updated_at !== updatedAt;
  await adoptStatus(svc, id, d.status, updatedAt);
  if (copied !== undefined) return { result: "copied", bytes: copied };
  return { result: changed ? "updated" : "unchanged" };
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
