/**
 * Image data read from a request body (uploads, stages) is counted while it is read: past
 * `maxUploads` the server refuses with 503 before reading, and shutdown destroys the requests
 * still in the set to cut their uploads off.
 */
import type { IncomingMessage } from "node:http";
import type { Context } from "hono";
import { BusyError } from "../errors.js";
import type { Env } from "./env.js";

/** Runs `fn`, which reads the request body as image data. */
export type TrackUpload = <T>(c: Context<Env>, fn: () => Promise<T>) => Promise<T>;

export function uploadTracker(uploads: Set<IncomingMessage>, maxUploads: number | undefined): TrackUpload {
  return async (c, fn) => {
    const req = c.env.incoming;
    const busy = maxUploads && uploads.size >= maxUploads;
    try {
      if (busy) throw new BusyError(`The server has ${uploads.size} uploads in progress: try again later.`);
      uploads.add(req);
      return await fn();
    } catch (e) {
      // The body may be unread; this connection cannot carry another request.
      c.header("Connection", "close");
      throw e;
    } finally {
      uploads.delete(req);
    }
  };
}
