/**
 * The small files a running server leaves beside its lock so that `tessera gc` can find and
 * reach it: its loopback URL and its local admin token. Written by whichever process holds the
 * lock (the server, or a cluster's primary), once for the node.
 */
import { randomBytes } from "node:crypto";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { LOCAL_TOKEN_FILE, SERVER_URL_FILE } from "../engine/dir-lock.js";

/**
 * A server started on a full disk serves all the same (deleting images is how the disk is
 * freed), so a file that cannot be written is a warning, not a failed start.
 */
async function note(log: Logger, file: string, text: string, mode: number): Promise<void> {
  try {
    await writeFile(file, text, { mode });
  } catch (e) {
    log.warn({ file, err: String(e) }, "could not write a file tessera gc uses to reach this server");
  }
}

/** A new local admin token, written (0600): whoever can read the data directory owns its data anyway. */
export async function noteLocalToken(log: Logger, dataDir: string): Promise<string> {
  const token = randomBytes(32).toString("base64url");
  await note(log, join(dataDir, LOCAL_TOKEN_FILE), `${token}\n`, 0o600);
  return token;
}

/** Writes where `tessera gc` finds the server listening on `url` (loopback when bound to all). */
export async function noteUrl(log: Logger, dataDir: string, url: string): Promise<void> {
  const local = url.replace("//0.0.0.0:", "//127.0.0.1:").replace("//[::]:", "//[::1]:");
  await note(log, join(dataDir, SERVER_URL_FILE), `${local}\n`, 0o644);
}

export async function removeNotes(dataDir: string): Promise<void> {
  await rm(join(dataDir, SERVER_URL_FILE), { force: true });
  await rm(join(dataDir, LOCAL_TOKEN_FILE), { force: true });
}
