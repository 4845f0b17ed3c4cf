/**
 * Parses Glance's two JSON-patch dialects into one list of operations:
 *   application/openstack-images-v2.1-json-patch  [{"op": "add", "path": "/x", "value": 1}]
 *   application/openstack-images-v2.0-json-patch  [{"add": "/x", "value": 1}] (deprecated)
 * Only add, remove and replace exist for images; JSON-pointer escapes (~0, ~1) are decoded.
 */
import { BadRequestError } from "../errors.js";

export const PATCH_V21 = "application/openstack-images-v2.1-json-patch";
export const PATCH_V20 = "application/openstack-images-v2.0-json-patch";
export const PATCH_TYPES = [PATCH_V20, PATCH_V21];

export type PatchOpName = "add" | "remove" | "replace";

export interface PatchOp {
  op: PatchOpName;
  /** The pointer's decoded segments: "/tags" → ["tags"]. */
  path: string[];
  value?: unknown;
}

const OPS: readonly string[] = ["add", "remove", "replace"];

function decodePointer(raw: unknown, lenient: boolean): string[] {
  if (typeof raw !== "string") throw new BadRequestError("Pointer must be a string.");
  let p = raw;
  if (!p.startsWith("/")) {
    // v2.0 clients sent paths without the leading slash.
    if (!lenient) throw new BadRequestError(`Pointer \`${raw}\` does not start with "/".`);
    p = `/${p}`;
  }
  if (/~[^01]|~$/.test(p))
    throw new BadRequestError(`Pointer \`${raw}\` contains "~" not part of a recognized escape sequence.`);
  return p
    .slice(1)
    .split("/")
    .map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
}

export function parsePatch(body: unknown, mediaType: string): PatchOp[] {
  if (!Array.isArray(body)) {
    throw new BadRequestError("Request body must be a JSON array of operation objects.");
  }
  const v20 = mediaType === PATCH_V20;
  return body.map((raw): PatchOp => {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw new BadRequestError("Operations must be JSON objects.");
    }
    const o = raw as Record<string, unknown>;
    let op: string;
    let path: unknown;
    if (v20) {
      const named = OPS.filter((k) => k in o);
      if (named.length !== 1) {
        throw new BadRequestError(
          'Operation objects must contain exactly one member named "add", "remove", or "replace".',
        );
      }
      op = named[0];
      path = o[op];
    } else {
      if (typeof o.op !== "string")
        throw new BadRequestError('Operation objects must contain a string member named "op".');
      op = o.op;
      path = o.path;
      if (!OPS.includes(op)) {
        throw new BadRequestError(
          `Invalid operation: \`${op}\`. It must be one of the following: add, remove, replace.`,
        );
      }
      if (!("path" in o))
        throw new BadRequestError(
          "Unable to find `path` in JSON Schema change. It is specified for every operation.",
        );
    }
    if (op !== "remove" && !("value" in o)) {
      throw new BadRequestError(`Operation "${op}" requires a member named "value".`);
    }
    return { op: op as PatchOpName, path: decodePointer(path, v20), value: o.value };
  });
}
