/**
 * The one place where errors become HTTP: typed errors map to statuses by their code, and
 * every error body is Glance-shaped. Glance (webob) answers errors as an HTML page, or as JSON
 * `{"message", "code", "title"}` when the client accepts JSON; clients parse either.
 */
import type { Context } from "hono";
import { TesseraError } from "../errors.js";

/** An error raised by the HTTP layer itself, with its status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const STATUS_BY_CODE: Record<string, number> = {
  bad_request: 400,
  format_rejected: 400,
  conversion_failed: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  gone: 410,
  too_large: 413,
  range_not_satisfiable: 416,
  // The client stopped sending; whatever we answer goes nowhere, but logs should say 400.
  incomplete_upload: 400,
  invalid_name: 400,
  unknown_store: 400,
  // Glance's StorageFull: an upload the store has no room for is 413 "Image storage media is full".
  store_full: 413,
  catalog_unwritable: 503,
  catalog_unavailable: 503,
  busy: 503,
  chunk_vanished: 503,
  lease_lost: 503,
  backend_unavailable: 503,
  damaged: 503,
  auth_unavailable: 503,
  corrupt: 500,
  store_format: 500,
};

const TITLES: Record<number, string> = {
  300: "Multiple Choices",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  410: "Gone",
  413: "Request Entity Too Large",
  415: "Unsupported Media Type",
  416: "Request Range Not Satisfiable",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

export function statusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  if (err instanceof TesseraError) return STATUS_BY_CODE[err.code] ?? 500;
  return 500;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#x${ch.charCodeAt(0).toString(16).padStart(2, "0")};`);
}

/** The Glance-shaped error response for `status` and `message`. */
export function errorResponse(
  c: Context,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): Response {
  const title = TITLES[status] ?? "Error";
  const accept = c.req.header("accept") ?? "";
  for (const [k, v] of Object.entries(headers)) c.header(k, v);
  if (/application\/json/i.test(accept)) {
    return c.json({ message, code: `${status} ${title}`, title }, status as 400);
  }
  const body = `<html>\n <head>\n  <title>${status} ${title}</title>\n </head>\n <body>\n  <h1>${status} ${title}</h1>\n  ${escapeHtml(message)}<br /><br />\n\n\n\n </body>\n</html>`;
  c.header("Content-Type", "text/html; charset=UTF-8");
  return c.body(body, status as 400);
}

/** Server-side failures whose message is meant for the client (it names no internals). */
const TOLD_5XX = new Set(["damaged", "busy", "catalog_unwritable"]);

/** Seconds a client should wait before trying again, for failures that pass by themselves. */
const RETRY_AFTER: Record<string, string> = {
  busy: "10",
  catalog_unwritable: "60",
  catalog_unavailable: "5",
  backend_unavailable: "10",
};

/** Maps any thrown value to its response; unexpected errors are 500 with no internals shown. */
export function responseForError(c: Context, err: unknown): Response {
  const status = statusOf(err);
  const retry = err instanceof TesseraError ? RETRY_AFTER[err.code] : undefined;
  if (retry) c.header("Retry-After", retry);
  if (status >= 500 && !(err instanceof TesseraError && TOLD_5XX.has(err.code))) {
    return errorResponse(
      c,
      status,
      "The server has either erred or is incapable of performing the requested operation.",
    );
  }
  const headers = err instanceof HttpError ? err.headers : {};
  return errorResponse(c, status, (err as Error).message, headers);
}
