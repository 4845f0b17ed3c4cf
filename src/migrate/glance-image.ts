/**
 * Glance's image and member shapes read as Tessera's: the attributes Glance keeps as columns
 * become the record's fields, every other key is a property, and times gain the milliseconds
 * Tessera records (it shows whole seconds, as Glance does).
 */
import { IMAGE_BASE_FIELDS, IMAGE_SERVER_KEYS, type ImageRecord } from "../catalog/image-records.js";
import { MEMBER_STATUSES, type Member, type MemberStatus } from "../catalog/member-records.js";
import type { AdoptedFields, AdoptedStatus, ExpectedData } from "../images/adopt.js";
import type { GlanceImage, GlanceMember } from "./glance-source.js";

/** Keys of Glance's image schema: every other key is a property. */
const CORE = new Set<string>(["id", ...IMAGE_BASE_FIELDS, ...IMAGE_SERVER_KEYS]);

/** What becomes of an image, by its status in Glance. */
export type Disposition =
  | { kind: "adopt"; status: AdoptedStatus; withData: boolean }
  /** Its data on the way in (saving, uploading, importing): a later run takes it. */
  | { kind: "busy"; status: string }
  /** Deleted in Glance: not migrated (Glance shows deleted images to no one). */
  | { kind: "deleted" };

export function disposition(image: GlanceImage): Disposition {
  switch (image.status) {
    case "active":
    case "deactivated":
      return { kind: "adopt", status: image.status, withData: true };
    case "queued":
    case "killed":
      return { kind: "adopt", status: image.status, withData: false };
    case "deleted":
    case "pending_delete":
      return { kind: "deleted" };
    default:
      return { kind: "busy", status: image.status };
  }
}

export function isoTime(t: string): string {
  return new Date(t).toISOString();
}

export function adoptedFields(image: GlanceImage): AdoptedFields {
  const properties: Record<string, string> = {};
  for (const [k, v] of Object.entries(image)) {
    if (!CORE.has(k) && v !== null && v !== undefined)
      properties[k] = typeof v === "string" ? v : JSON.stringify(v);
  }
  const str = (k: string) => (typeof image[k] === "string" ? (image[k] as string) : null);
  return {
    id: image.id,
    name: str("name"),
    visibility: image.visibility as ImageRecord["visibility"],
    protected: image.protected === true,
    os_hidden: image.os_hidden === true,
    owner: str("owner"),
    disk_format: str("disk_format"),
    container_format: str("container_format"),
    min_disk: Number(image.min_disk ?? 0),
    min_ram: Number(image.min_ram ?? 0),
    created_at: isoTime(image.created_at),
    tags: Array.isArray(image.tags) ? (image.tags as string[]) : [],
    properties,
  };
}

export function expectedData(image: GlanceImage): ExpectedData {
  const algo = typeof image.os_hash_algo === "string" ? image.os_hash_algo : null;
  const value = typeof image.os_hash_value === "string" ? image.os_hash_value : null;
  return {
    size: typeof image.size === "number" ? image.size : null,
    checksum: typeof image.checksum === "string" ? image.checksum : null,
    osHash: algo && value ? { algo, value } : null,
  };
}

/** Whether the record's data is the data Glance recorded for the image (same size and digests). */
export function sameData(rec: ImageRecord, expected: ExpectedData): boolean {
  if (rec.object === null) return false;
  return (
    (expected.size === null || rec.size === expected.size) &&
    (expected.checksum === null || rec.checksum === expected.checksum) &&
    (expected.osHash === null ||
      (rec.os_hash_algo === expected.osHash.algo && rec.os_hash_value === expected.osHash.value))
  );
}

export function adoptedMember(imageId: string, m: GlanceMember): Member {
  const status = (MEMBER_STATUSES as readonly string[]).includes(m.status)
    ? (m.status as MemberStatus)
    : "pending";
  return {
    image_id: imageId,
    member_id: m.member_id,
    status,
    created_at: isoTime(m.created_at),
    updated_at: isoTime(m.updated_at),
  };
}
