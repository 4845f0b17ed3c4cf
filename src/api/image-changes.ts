/**
 * Glance's rules for what a client may set on an image: on create (a JSON object) and on
 * update (a JSON patch). Read-only and reserved attributes are 403, schema violations 400,
 * missing properties 409, too many properties or tags 413, each with Glance's message; and the
 * tag routes' rules.
 */
import { IMAGE_BASE_FIELDS, IMAGE_SERVER_KEYS, type ImageRecord } from "../catalog/image-records.js";
import { BadRequestError, ConflictError, ForbiddenError, TooLargeError } from "../errors.js";
import type { NewImage } from "../images/images.js";
import { HttpError } from "./errors.js";
import type { PatchOp } from "./json-patch.js";
import { validateImage } from "./validate.js";

/** Attributes the server sets; a client naming one gets 403. */
const READ_ONLY = new Set<string>(IMAGE_SERVER_KEYS);

/** Names Glance keeps for itself (403 "is reserved"). */
const RESERVED = new Set(["location", "deleted", "deleted_at"]);

/** Core attributes stored as record fields rather than free-form properties. */
const BASE = new Set<string>(["id", ...IMAGE_BASE_FIELDS]);

export interface ImageLimits {
  /** Most free-form properties per image (Glance's image_property_quota). */
  maxProperties: number;
  /** Most tags per image (Glance's image_tag_quota). */
  maxTags: number;
}

const MAX_INT32 = 2 ** 31 - 1;

function checkWritable(name: string): void {
  if (READ_ONLY.has(name)) throw new ForbiddenError(`Attribute '${name}' is read-only.`);
  if (RESERVED.has(name) || name.startsWith("os_glance")) {
    throw new ForbiddenError(`Attribute '${name}' is reserved.`);
  }
}

function checkProperty(name: string, value: unknown): void {
  if (name.length === 0 || name.length > 255) {
    throw new BadRequestError(`Property names must be 1 to 255 characters long.`);
  }
  if (typeof value === "string" && value.length > 65535) {
    throw new BadRequestError(`The value of property '${name}' is longer than 65535 characters.`);
  }
}

function checkBounds(rec: Pick<ImageRecord, "min_disk" | "min_ram">): void {
  for (const k of ["min_disk", "min_ram"] as const) {
    if (rec[k] < 0) throw new BadRequestError(`${k}: Cannot be a negative value.`);
    if (rec[k] > MAX_INT32) throw new BadRequestError(`${k}: Value must be at most ${MAX_INT32}.`);
  }
}

function checkLimits(rec: Pick<ImageRecord, "tags" | "properties">, limits: ImageLimits): void {
  const props = Object.keys(rec.properties).length;
  if (props > limits.maxProperties) {
    throw new TooLargeError(
      `Attempted: ${props}, Maximum: ${limits.maxProperties}. The limit on image properties was exceeded.`,
    );
  }
  if (rec.tags.length > limits.maxTags) {
    throw new TooLargeError(
      `Attempted: ${rec.tags.length}, Maximum: ${limits.maxTags}. The limit on image tags was exceeded.`,
    );
  }
}

/** The fields of a new image from a create request's body (already parsed JSON). */
export function imageFromCreateBody(body: unknown, limits: ImageLimits): NewImage {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new BadRequestError("Body expected in request: a JSON object of image attributes.");
  }
  const doc = body as Record<string, unknown>;
  for (const name of Object.keys(doc)) {
    if (name !== "id") checkWritable(name);
  }
  validateImage(doc);
  const out: NewImage = { properties: {} };
  const props = out.properties as Record<string, string>;
  for (const [name, value] of Object.entries(doc)) {
    if (BASE.has(name)) {
      (out as Record<string, unknown>)[name] = value;
    } else if (value !== null) {
      checkProperty(name, value);
      props[name] = value as string;
    }
  }
  out.tags = [...new Set(out.tags ?? [])];
  checkBounds({ min_disk: out.min_disk ?? 0, min_ram: out.min_ram ?? 0 });
  checkLimits({ tags: out.tags, properties: props }, limits);
  return out;
}

/**
 * Applies a JSON patch to an image record (a copy), with Glance's rules:
 * `add` of an existing attribute replaces it; `replace`/`remove` of a missing property is 409;
 * base attributes cannot be removed; formats change only while the image is queued.
 */
export function applyPatch(rec: ImageRecord, ops: PatchOp[], limits: ImageLimits): ImageRecord {
  for (const op of ops) {
    const [name, ...rest] = op.path;
    if (name === undefined || name === "")
      throw new BadRequestError("Unable to change the image: empty path.");
    checkWritable(name);
    if (name === "id") throw new ForbiddenError(`Attribute 'id' is read-only.`);
    if (rest.length > 0)
      throw new BadRequestError(`Invalid JSON pointer for this resource: '/${op.path.join("/")}'`);
    if (op.op !== "remove") validateImage({ [name]: op.value });
    if (BASE.has(name)) {
      if (op.op === "remove") throw new ForbiddenError(`Properties ${name} cannot be removed.`);
      if ((name === "disk_format" || name === "container_format") && rec.status !== "queued") {
        throw new ForbiddenError(`Attribute ${name} can be only replaced for a queued image.`);
      }
      if (name === "tags") {
        rec.tags = [...new Set(op.value as string[])];
      } else {
        (rec as unknown as Record<string, unknown>)[name] = op.value;
      }
      continue;
    }
    const exists = Object.hasOwn(rec.properties, name);
    if ((op.op === "replace" || op.op === "remove") && !exists) {
      throw new ConflictError(`Property ${name} does not exist.`);
    }
    if (op.op === "remove") {
      delete rec.properties[name];
    } else if (op.value === null) {
      // Glance stores no null properties; setting one to null removes it.
      delete rec.properties[name];
    } else {
      checkProperty(name, op.value);
      rec.properties[name] = op.value as string;
    }
  }
  checkBounds(rec);
  checkLimits(rec, limits);
  return rec;
}

/** PUT /v2/images/{id}/tags/{tag}: adds the tag (once), within the schema and the tag quota. */
export function addTag(rec: ImageRecord, tag: string, limits: ImageLimits): ImageRecord {
  validateImage({ tags: [tag] });
  if (!rec.tags.includes(tag)) rec.tags.push(tag);
  checkLimits(rec, limits);
  return rec;
}

/** DELETE /v2/images/{id}/tags/{tag}: removes the tag; a tag the image lacks is not found. */
export function removeTag(rec: ImageRecord, tag: string): ImageRecord {
  if (!rec.tags.includes(tag)) throw new HttpError(404, "The resource could not be found.");
  rec.tags = rec.tags.filter((t) => t !== tag);
  return rec;
}
