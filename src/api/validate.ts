/**
 * Validation against the served image schema (schemas.ts): the document clients read is the
 * document requests are checked with. Errors read like Glance's (jsonschema) messages.
 */
import { Ajv, type ErrorObject } from "ajv";
import { BadRequestError } from "../errors.js";
import { IMAGE_SCHEMA, nulRefusal } from "./schemas.js";

// strict: false because Glance's schema carries its own keywords (is_base, links, name).
const ajv = new Ajv({ strict: false, allErrors: false });
// The metadefs schemas' formats. A property's `pattern` is a Python regular expression, which
// JavaScript's may not parse (named groups are written (?P<name>...)): any string passes, as
// in Glance, whose schema checks run without a format checker.
ajv.addFormat("regex", true);
ajv.addFormat("date-time", true);
const validateImageSchema = ajv.compile(IMAGE_SCHEMA);

function pyRepr(v: unknown): string {
  if (v === null) return "None";
  if (typeof v === "string") return `'${v}'`;
  if (typeof v === "boolean") return v ? "True" : "False";
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(", ")}]`;
  return JSON.stringify(v);
}

function describe(e: ErrorObject, doc: Record<string, unknown>): string {
  let value: unknown = doc;
  for (const part of e.instancePath.split("/").slice(1)) value = (value as Record<string, unknown>)?.[part];
  const where = e.instancePath.replace(/^\//, "").replaceAll("/", ".");
  switch (e.keyword) {
    case "enum":
      return `${pyRepr(value)} is not one of ${pyRepr((e.params as { allowedValues: unknown[] }).allowedValues)}`;
    case "type":
      return `${where || "value"}: ${pyRepr(value)} is not of type ${pyRepr((e.params as { type: unknown }).type)}`;
    case "maxLength":
      return `${where}: value is too long (at most ${(e.params as { limit: number }).limit} characters)`;
    case "required":
      return `'${(e.params as { missingProperty: string }).missingProperty}' is a required property`;
    case "additionalProperties":
      return `Additional properties are not allowed ('${(e.params as { additionalProperty: string }).additionalProperty}' was unexpected)`;
    case "pattern":
      return `${where}: ${pyRepr(value)} does not match ${pyRepr((e.params as { pattern: string }).pattern)}`;
    default:
      return `${where || "object"}: ${e.message ?? "is invalid"}`;
  }
}

/**
 * A check of documents against `schema`: throws BadRequestError, worded as Glance's, naming the
 * schema `name` and the first thing wrong.
 */
export function schemaCheck(schema: object, name: string): (doc: unknown) => void {
  const validate = ajv.compile(schema);
  return (doc) => {
    if (validate(doc)) return;
    const err = validate.errors?.[0];
    const detail = err ? describe(err, doc as Record<string, unknown>) : "invalid";
    throw new BadRequestError(`Provided object does not match schema '${name}': ${detail}`);
  };
}

/** Throws BadRequestError unless `doc` (a whole image or a part of one) matches the schema. */
export function validateImage(doc: Record<string, unknown>): void {
  if (validateImageSchema(doc)) {
    const nul = nulRefusal(doc);
    if (nul) throw new BadRequestError(nul);
    return;
  }
  const err = validateImageSchema.errors?.[0];
  const detail = err ? describe(err, doc) : "invalid";
  throw new BadRequestError(`Provided object does not match schema 'image': ${detail}`);
}
