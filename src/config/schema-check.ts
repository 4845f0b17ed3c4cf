/**
 * Checking an object-valued configuration key (a section: stores, auth, quotas...) against its
 * JSON schema, with the messages the schema carries. A schema node may hold `x-message`: one
 * text, or one per keyword it fails; in it {key} is the key at fault, {at} the dotted path of
 * the object holding that key, {path} the dotted path of the value and {type} the type wanted.
 *
 * Of several faults the one reported is the first in the order of the keys as written (a
 * missing key after every present one), then in KEYWORD_ORDER: the order the checks ran in
 * when they were hand-written, so a configuration is refused with the message it always was.
 */
import { Ajv, type AnySchema, type ErrorObject } from "ajv";
import type { ConfigError } from "./server-config.js";

const ajv = new Ajv({
  allErrors: true,
  verbose: true,
  discriminator: true,
  strict: true,
  // A discriminator's tag is required in the node that names it, not in each branch.
  strictRequired: false,
});
ajv.addKeyword({ keyword: "x-message", schemaType: ["string", "object"] });
ajv.addKeyword({ keyword: "x-json-text", schemaType: "boolean" });

/** Ties between faults at one place: a store's name before its type, its type before its keys. */
const KEYWORD_ORDER = [
  "minProperties",
  "propertyName",
  "type",
  "discriminator",
  "additionalProperties",
  "const",
  "enum",
  "minimum",
  "maximum",
  "pattern",
  "minItems",
  "required",
  "minLength",
];

/** Keywords whose faults only say that one inside them failed: that one is reported. */
const WRAPPERS = new Set(["propertyNames", "if", "oneOf", "anyOf", "allOf"]);

/** Reports a fault as `bad(why)` does, for the key being loaded. */
export type Bad = (why: string) => ConfigError;

function segments(instancePath: string): string[] {
  if (instancePath === "") return [];
  return instancePath
    .slice(1)
    .split("/")
    .map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
}

/** The key a fault is about when it is not the last segment of the path (unknown, missing, badly named). */
function namedKey(e: ErrorObject): string | undefined {
  const p = e.params as { additionalProperty?: string; missingProperty?: string };
  return e.propertyName ?? p.additionalProperty ?? p.missingProperty;
}

function indexIn(node: unknown, key: string): number {
  if (Array.isArray(node)) return Number(key);
  if (typeof node === "object" && node !== null) return Object.keys(node).indexOf(key);
  return 0;
}

/** Where a fault sits in the value as written: the index of each key on its path. */
function position(e: ErrorObject, data: unknown): number[] {
  const out: number[] = [];
  let node = data;
  for (const s of segments(e.instancePath)) {
    out.push(indexIn(node, s));
    node = (node as Record<string, unknown> | undefined)?.[s];
  }
  if (e.keyword === "required") out.push(Number.POSITIVE_INFINITY);
  else if (namedKey(e) !== undefined) out.push(indexIn(node, namedKey(e) as string));
  return out;
}

function rank(e: ErrorObject): number {
  // What an if/then/else asks for was checked last by hand too (swift's credentials).
  if (/\/(then|else)\//.test(e.schemaPath)) return KEYWORD_ORDER.length + 1;
  const i = KEYWORD_ORDER.indexOf(e.propertyName !== undefined ? "propertyName" : e.keyword);
  return i < 0 ? KEYWORD_ORDER.length : i;
}

function before(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function message(e: ErrorObject): string {
  const path = segments(e.instancePath);
  const named = namedKey(e);
  const spec = (e.parentSchema as { "x-message"?: string | Record<string, string> } | undefined)?.[
    "x-message"
  ];
  const text = typeof spec === "string" ? spec : spec?.[e.keyword];
  // Every node of the section schemas carries its messages; this is for one that was forgotten.
  if (text === undefined) return `${path.join(".")} ${e.message ?? "is not valid"}`.trim();
  const fill: Record<string, string> = {
    key: named ?? path.at(-1) ?? "",
    at: (named !== undefined ? path : path.slice(0, -1)).join("."),
    path: path.join("."),
    type: String((e.params as { type?: unknown }).type),
  };
  return text.replace(/\{(key|at|path|type)\}/g, (_, name: string) => fill[name]);
}

/**
 * A check of values against `schema` (compiled on first use): returns the value, typed, when
 * it matches, else throws `bad` with the message of its first fault (see the module comment).
 */
export function sectionCheck<T>(schema: AnySchema): (value: unknown, bad: Bad) => T {
  let validate: ReturnType<typeof ajv.compile> | undefined;
  return (given, bad) => {
    validate ??= ajv.compile(schema);
    const value = jsonTexts(schema, given, [], bad);
    if (validate(value)) return value as T;
    const faults = (validate.errors ?? [])
      .filter((e) => !WRAPPERS.has(e.keyword))
      .map((e) => ({ e, at: position(e, value), rank: rank(e) }));
    faults.sort((a, b) => before(a.at, b.at) || a.rank - b.rank);
    throw bad(faults.length > 0 ? message(faults[0].e) : "is not valid");
  };
}

type Node = {
  properties?: Record<string, Node>;
  additionalProperties?: Node | boolean;
  oneOf?: Node[];
  "x-json-text"?: boolean;
};

/**
 * `value` with JSON text parsed where the schema marks a node `x-json-text`: the hand-written
 * checks took an object there as JSON text as well, and configurations written so still load.
 */
function jsonTexts(schema: unknown, value: unknown, path: string[], bad: Bad): unknown {
  const node = schema as Node;
  let v = value;
  if (node["x-json-text"] && typeof v === "string") {
    try {
      v = JSON.parse(v);
    } catch {
      throw bad(`${path.join(".")} must be a JSON object`);
    }
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const sub = [node, ...(node.oneOf ?? [])].map((n) => n.properties?.[k]).find((n) => n !== undefined);
    const extra = typeof node.additionalProperties === "object" ? node.additionalProperties : undefined;
    out[k] = sub || extra ? jsonTexts(sub ?? extra, x, [...path, k], bad) : x;
  }
  return out;
}

/** An object-valued key: an object from a file, JSON text from the environment. */
export function objectValue(value: unknown, bad: Bad): Record<string, unknown> {
  let v = value;
  if (typeof v === "string") {
    try {
      v = JSON.parse(v);
    } catch {
      throw bad("must be a JSON object");
    }
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad("must be an object");
  return v as Record<string, unknown>;
}
