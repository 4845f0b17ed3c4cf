import type { Context } from "hono";
import { BadRequestError, TooLargeError } from "../errors.js";
import type { Env } from "./env.js";

/**
 * Deepest nesting a JSON body may have. Glance's bodies are a few levels deep (a patch value is
 * at most a list of strings); thousands of levels overflow the stack of whatever walks the
 * value later (validation, error messages), so they are refused before parsing.
 */
export const MAX_JSON_DEPTH = 32;

/** A route's reader of its JSON body, with the server's size limit bound. */
export type ReadJson = (c: Context<Env>) => Promise<unknown>;

/** Reads a JSON body, refusing more than `max` bytes before buffering them. */
export async function readJson(c: Context<Env>, max: number): Promise<unknown> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > max) throw new TooLargeError(`The request body is larger than ${max} bytes.`);
  const parts: Buffer[] = [];
  let total = 0;
  for await (const piece of c.env.incoming as AsyncIterable<Buffer>) {
    total += piece.length;
    if (total > max) throw new TooLargeError(`The request body is larger than ${max} bytes.`);
    parts.push(piece);
  }
  const text = Buffer.concat(parts).toString("utf8");
  if (jsonDepth(text) > MAX_JSON_DEPTH) {
    throw new BadRequestError(`The JSON body is nested more than ${MAX_JSON_DEPTH} levels deep.`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new BadRequestError("Malformed JSON in request body.");
  }
}

/** The deepest nesting of arrays and objects in JSON text (brackets inside strings do not count). */
export function jsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c)
        i++; // backslash: the next character is escaped
      else if (ch === 0x22) inString = false;
    } else if (ch === 0x22) {
      inString = true;
    } else if (ch === 0x7b || ch === 0x5b) {
      if (++depth > deepest) deepest = depth;
    } else if (ch === 0x7d || ch === 0x5d) {
      depth--;
    }
  }
  return deepest;
}
