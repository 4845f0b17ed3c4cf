/** The request's media type, and Glance's 415 for one a route does not take. */
import type { Context } from "hono";
import { HttpError } from "./errors.js";

export function mediaType(c: Context): string | undefined {
  return c.req.header("content-type")?.split(";")[0].trim().toLowerCase();
}

export function unsupportedMediaType(
  type: string | undefined,
  headers: Record<string, string> = {},
): HttpError {
  return new HttpError(
    415,
    `The request media type ${type ?? "(none)"} is not supported by this server.\n`,
    headers,
  );
}
