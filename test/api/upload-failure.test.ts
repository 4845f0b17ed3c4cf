import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { prng } from "../helpers/data.js";
import { client, sharedServer } from "../helpers/server.js";

const server = sharedServer({ imageSizeCap: 4 * 1024 * 1024 });
const api = client(() => server().url);

async function status(id: string): Promise<string> {
  return ((await (await api.get(`/v2/images/${id}`)).json()) as { status: string }).status;
}

async function until(pred: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts an upload that declares `declared` bytes, sends `sent` of them, and drops the connection. */
async function abortedUpload(id: string, declared: number, sent: Uint8Array): Promise<void> {
  const url = new URL(api.url(`/v2/images/${id}/file`));
  const req = request(url, {
    method: "PUT",
    headers: { "content-type": "application/octet-stream", "content-length": declared },
  });
  req.on("error", () => {});
  req.write(sent);
  await until(async () => (await status(id)) === "saving", "saving");
  req.destroy();
}

describe("interrupted and refused uploads", () => {
  it("returns an image to queued when the client drops mid-upload, and accepts a new upload", async () => {
    const img = await api.createImage({ name: "drop", disk_format: "raw", container_format: "bare" });
    await abortedUpload(img.id, 3 * 1024 * 1024, prng(1, 1024 * 1024));
    await until(async () => (await status(img.id)) === "queued", "queued");
    const got = (await (await api.get(`/v2/images/${img.id}`)).json()) as Record<string, unknown>;
    expect(got).toMatchObject({ size: null, checksum: null, os_hash_value: null });
    expect((await api.get(`/v2/images/${img.id}/file`)).status).toBe(204);
    const data = prng(2, 2 * 1024 * 1024);
    expect((await api.upload(img.id, data)).status).toBe(204);
    const body = Buffer.from(await (await api.get(`/v2/images/${img.id}/file`)).arrayBuffer());
    expect(body.equals(Buffer.from(data))).toBe(true);
  });

  it("refuses a second upload while the first is saving (409)", async () => {
    const img = await api.createImage({ name: "twice", disk_format: "raw", container_format: "bare" });
    const url = new URL(api.url(`/v2/images/${img.id}/file`));
    const first = request(url, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream", "content-length": 1024 * 1024 },
    });
    first.on("error", () => {});
    first.write(prng(3, 1000));
    await until(async () => (await status(img.id)) === "saving", "saving");
    const second = await api.upload(img.id, "x");
    expect(second.status).toBe(409);
    expect(await second.text()).toContain("Image status transition from saving to saving is not allowed");
    first.destroy();
    await until(async () => (await status(img.id)) === "queued", "queued");
  });

  it("refuses an image over the size cap with 413 and leaves it queued", async () => {
    const img = await api.createImage({ name: "big", disk_format: "raw", container_format: "bare" });
    const res = await api.upload(img.id, prng(4, 5 * 1024 * 1024)).catch(() => undefined);
    // The server may close the connection before the client has sent everything.
    if (res) expect(res.status).toBe(413);
    await until(async () => (await status(img.id)) === "queued", "queued");
  });

  it("lets a delete win over an upload in progress: the upload fails and the image stays gone", async () => {
    const img = await api.createImage({ name: "gone", disk_format: "raw", container_format: "bare" });
    const url = new URL(api.url(`/v2/images/${img.id}/file`));
    const req = request(url, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream", "content-length": 2 * 1024 * 1024 },
    });
    const answered = new Promise<number>((resolve, reject) => {
      req.on("response", (r) => resolve(r.statusCode ?? 0));
      req.on("error", reject);
    });
    req.write(prng(5, 1024 * 1024));
    await until(async () => (await status(img.id)) === "saving", "saving");
    expect((await api.request("DELETE", `/v2/images/${img.id}`)).status).toBe(204);
    req.end(prng(6, 1024 * 1024));
    expect(await answered).toBe(410);
    expect((await api.get(`/v2/images/${img.id}`)).status).toBe(404);
  });
});
