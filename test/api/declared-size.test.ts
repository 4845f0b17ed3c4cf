/**
 * The x-openstack-image-size header on PUT /file and PUT /stage: a body of exactly that size is
 * taken; one larger or smaller is refused with 400 and nothing is kept (the image is queued
 * again, with no size, checksum or staged data), and a value that is not a byte count is 400.
 */
import { describe, expect, it } from "vitest";
import { prng } from "../helpers/data.js";
import { client, sharedServer } from "../helpers/server.js";

const server = sharedServer();
const api = client(() => server().url);

async function put(id: string, path: "file" | "stage", data: Uint8Array, size: string) {
  return api.request("PUT", `/v2/images/${id}/${path}`, {
    headers: { "content-type": "application/octet-stream", "x-openstack-image-size": size },
    body: new Uint8Array(data).buffer,
  });
}

async function image(id: string) {
  return (await (await api.get(`/v2/images/${id}`)).json()) as Record<string, unknown>;
}

describe("x-openstack-image-size", () => {
  const data = prng(21, 3 * 1024 * 1024 + 17);

  for (const path of ["file", "stage"] as const) {
    it(`PUT /${path}: a body of another size is 400 and leaves the image queued with nothing attached`, async () => {
      const { id } = await api.createImage({ name: path, disk_format: "raw", container_format: "bare" });
      for (const size of [data.length - 1, data.length + 1, 0]) {
        const res = await put(id, path, data, String(size));
        expect(res.status, `declared ${size}`).toBe(400);
        expect(await res.text()).toContain("x-openstack-image-size");
        const rec = await image(id);
        expect(rec).toMatchObject({ status: "queued", size: null, checksum: null });
      }
      expect((await put(id, path, data, "12 bytes")).status).toBe(400);
      const ok = await put(id, path, data, String(data.length));
      expect(ok.status).toBe(204);
      expect(await image(id)).toMatchObject({
        status: path === "file" ? "active" : "uploading",
        size: data.length,
      });
    });
  }

  it("PUT /file without the header takes any size, as before", async () => {
    const { id } = await api.createImage({ name: "plain", disk_format: "raw", container_format: "bare" });
    expect((await api.upload(id, data)).status).toBe(204);
    const got = Buffer.from(await (await api.get(`/v2/images/${id}/file`)).arrayBuffer());
    expect(got.equals(Buffer.from(data))).toBe(true);
  });
});
