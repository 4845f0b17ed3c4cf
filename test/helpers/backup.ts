/**
 * What the backup tests share: images uploaded to a running server and remembered by md5, an
 * upload held open halfway (the write in flight during a backup), the CLI, and the check that
 * a server on restored data serves every remembered image intact.
 */
import { createHash } from "node:crypto";
import { request } from "node:http";
import { expect } from "vitest";
import { BIN } from "./child-server.js";
import { runAsync } from "./run.js";
import { waitFor } from "./wait.js";

export const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

export const tessera = (...args: string[]) => runAsync(process.execPath, [BIN, ...args]);

/** Creates an image and uploads `bytes`; its id. */
export async function uploadImage(url: string, name: string, bytes: Uint8Array): Promise<string> {
  const created = await fetch(`${url}/v2/images`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, disk_format: "raw", container_format: "bare" }),
  });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  const put = await fetch(`${url}/v2/images/${id}/file`, {
    method: "PUT",
    headers: { "content-type": "application/octet-stream" },
    body: new Uint8Array(bytes),
  });
  expect(put.status, name).toBe(204);
  return id;
}

export async function imageStatus(url: string, id: string): Promise<string> {
  const res = await fetch(`${url}/v2/images/${id}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { status: string }).status;
}

/** A collection with no grace on the server at `url` (POST /tessera/v1/gc); its first store's report. */
export async function collectNow(url: string): Promise<Record<string, number>> {
  const res = await fetch(`${url}/tessera/v1/gc`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ graceSeconds: 0 }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { stores: Record<string, number>[] }).stores[0] as Record<string, number>;
}

export interface HeldUpload {
  id: string;
  /** Sends the rest and ends the body; the response's status. */
  finish(): Promise<number>;
}

/**
 * An upload of `bytes` with its first `sent` bytes on the wire and the rest held back, once
 * the server has the image `saving`: a write in flight, its lease taken, its packs maybe
 * written, nothing committed.
 */
export async function holdUpload(url: string, bytes: Buffer, sent: number): Promise<HeldUpload> {
  const created = await fetch(`${url}/v2/images`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "in flight", disk_format: "raw", container_format: "bare" }),
  });
  const { id } = (await created.json()) as { id: string };
  const req = request(`${url}/v2/images/${id}/file`, {
    method: "PUT",
    headers: { "content-type": "application/octet-stream", "transfer-encoding": "chunked" },
  });
  const status = new Promise<number>((resolve, reject) => {
    req.once("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once("error", reject);
  });
  req.write(bytes.subarray(0, sent));
  await waitFor("the upload to be saving", async () => (await imageStatus(url, id)) === "saving");
  return {
    id,
    finish: async () => {
      req.end(bytes.subarray(sent));
      return status;
    },
  };
}

/** Every image in `expected` is active on the server at `url` and downloads with its md5. */
export async function expectImagesIntact(url: string, expected: Map<string, string>): Promise<void> {
  for (const [id, sum] of expected) {
    expect(await imageStatus(url, id), id).toBe("active");
    const res = await fetch(`${url}/v2/images/${id}/file`);
    expect(res.status, id).toBe(200);
    expect(md5(Buffer.from(await res.arrayBuffer())), id).toBe(sum);
  }
}

/**
 * The image that was uploading when the backup was taken: on the restored server, either
 * without data (queued: the upload never committed there) or, had it committed first, whole.
 */
export async function expectAbsentOrIntact(url: string, id: string, sum: string): Promise<string> {
  const status = await imageStatus(url, id);
  expect(["queued", "active"], status).toContain(status);
  if (status === "active") await expectImagesIntact(url, new Map([[id, sum]]));
  return status;
}
