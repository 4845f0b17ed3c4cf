import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { IMAGE_SCHEMA } from "../../src/api/schemas.js";
import { prng } from "../helpers/data.js";
import { client, sharedServer } from "../helpers/server.js";

const server = sharedServer();
const api = client(() => server().url);

const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");
const sha512 = (b: Uint8Array) => createHash("sha512").update(b).digest("hex");

async function activeImage(data: Uint8Array, extra: Record<string, unknown> = {}) {
  const img = await api.createImage({ name: "img", disk_format: "raw", container_format: "bare", ...extra });
  const res = await api.upload(img.id, data);
  expect(res.status).toBe(204);
  return img.id;
}

describe("discovery and schemas", () => {
  it("answers / with 300 and /versions with 200, both listing v2.15 as CURRENT at this host (no image cache)", async () => {
    for (const [path, status] of [
      ["/", 300],
      ["/versions", 200],
    ] as const) {
      const res = await api.get(path);
      expect(res.status).toBe(status);
      const doc = (await res.json()) as {
        versions: { id: string; status: string; links: { href: string }[] }[];
      };
      expect(doc.versions[0]).toEqual({
        id: "v2.15",
        status: "CURRENT",
        links: [{ rel: "self", href: `${server().url}/v2/` }],
      });
      expect(doc.versions.map((v) => v.id)).toContain("v2.0");
    }
  });

  it("serves the image schema that requests are validated against, without the stores property", async () => {
    const res = await api.get("/v2/schemas/image");
    const schema = (await res.json()) as { properties: Record<string, unknown> };
    expect(schema).toEqual(JSON.parse(JSON.stringify(IMAGE_SCHEMA)));
    expect(schema.properties.stores).toBeUndefined();
    expect(schema.properties.disk_format).toBeDefined();
    const images = (await (await api.get("/v2/schemas/images")).json()) as {
      properties: { images: { items: unknown } };
    };
    expect(images.properties.images.items).toEqual(schema);
    for (const name of ["member", "members"]) expect((await api.get(`/v2/schemas/${name}`)).status).toBe(200);
  });

  it("puts an x-openstack-request-id on every response, errors included", async () => {
    for (const path of ["/", "/v2/images", "/v2/images/nope", "/v2/nope"]) {
      const res = await api.get(path);
      expect(res.headers.get("x-openstack-request-id")).toMatch(/^req-[0-9a-f-]{36}$/);
    }
  });
});

describe("image lifecycle", () => {
  it("creates a queued image with Glance's defaults, Location header and custom properties", async () => {
    const res = await fetch(api.url("/v2/images"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        name: "ex",
        disk_format: "raw",
        container_format: "bare",
        tags: ["a"],
        min_ram: 64,
        p: "v",
      }),
    });
    expect(res.status).toBe(201);
    const img = (await res.json()) as Record<string, unknown>;
    expect(res.headers.get("location")).toBe(`${server().url}/v2/images/${img.id}`);
    expect(img).toMatchObject({
      name: "ex",
      status: "queued",
      visibility: "shared",
      size: null,
      virtual_size: null,
      checksum: null,
      os_hash_algo: null,
      os_hash_value: null,
      protected: false,
      os_hidden: false,
      min_ram: 64,
      min_disk: 0,
      owner: null,
      tags: ["a"],
      p: "v",
      self: `/v2/images/${img.id}`,
      file: `/v2/images/${img.id}/file`,
      schema: "/v2/schemas/image",
    });
    expect(img.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // Download before any data: 204, empty.
    const dl = await api.get(`/v2/images/${img.id}/file`);
    expect(dl.status).toBe(204);
    expect((await dl.arrayBuffer()).byteLength).toBe(0);
  });

  it("uploads and downloads byte-identical data with md5 checksum, sha512 os_hash_value and Content-MD5", async () => {
    const data = prng(7, 3 * 1024 * 1024 + 17);
    const id = await activeImage(data);
    const img = (await (await api.get(`/v2/images/${id}`)).json()) as Record<string, unknown>;
    expect(img).toMatchObject({
      status: "active",
      size: data.length,
      virtual_size: data.length,
      checksum: md5(data),
      os_hash_algo: "sha512",
      os_hash_value: sha512(data),
    });
    const res = await api.get(`/v2/images/${id}/file`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    expect(res.headers.get("content-length")).toBe(String(data.length));
    expect(res.headers.get("content-md5")).toBe(md5(data));
    expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(data))).toBe(true);
  });

  it("accepts an empty upload as an active image of size 0", async () => {
    const id = await activeImage(new Uint8Array(0));
    const img = (await (await api.get(`/v2/images/${id}`)).json()) as Record<string, unknown>;
    expect(img).toMatchObject({ status: "active", size: 0, checksum: md5(new Uint8Array(0)) });
    const res = await api.get(`/v2/images/${id}/file`);
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });

  it("refuses a second upload with 409 and leaves the first data in place", async () => {
    const data = prng(8, 100_000);
    const id = await activeImage(data);
    const res = await api.upload(id, "other");
    expect(res.status).toBe(409);
    expect(await res.text()).toContain("Image status transition from active to saving is not allowed");
    const dl = Buffer.from(await (await api.get(`/v2/images/${id}/file`)).arrayBuffer());
    expect(dl.equals(Buffer.from(data))).toBe(true);
  });

  it("refuses data before disk_format and container_format are set (400), and uploads of other media types (415)", async () => {
    const img = await api.createImage({ name: "bare" });
    const res = await api.upload(img.id, "x");
    expect(res.status).toBe(400);
    expect(await res.text()).toContain(
      "Properties disk_format, container_format must be set prior to saving data.",
    );
    const img2 = await api.createImage({ name: "f", disk_format: "raw", container_format: "bare" });
    const wrong = await fetch(api.url(`/v2/images/${img2.id}/file`), {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(wrong.status).toBe(415);
    expect((await (await api.get(`/v2/images/${img2.id}`)).json()) as object).toMatchObject({
      status: "queued",
    });
  });

  it("answers single ranges with 206 and Content-Range, several with 400, and out-of-range starts or a last byte before the first with 416", async () => {
    const data = prng(9, 1024 * 1024);
    const id = await activeImage(data);
    const path = `/v2/images/${id}/file`;
    const cases: [string, number, number][] = [
      ["bytes=0-99", 0, 100],
      ["bytes=-100", data.length - 100, data.length],
      ["bytes=1048500-", 1048500, data.length],
      ["bytes=1000-999999999", 1000, data.length],
    ];
    for (const [range, start, end] of cases) {
      const res = await api.get(path, { range });
      expect(res.status).toBe(206);
      expect(res.headers.get("content-range")).toBe(`bytes ${start}-${end - 1}/${data.length}`);
      expect(res.headers.get("content-md5")).toBe(md5(data));
      const body = Buffer.from(await res.arrayBuffer());
      expect(body.equals(Buffer.from(data.subarray(start, end)))).toBe(true);
    }
    const multi = await api.get(path, { range: "bytes=0-1,5-6" });
    expect(multi.status).toBe(400);
    expect(await multi.text()).toContain("Requests with multiple ranges are not supported");
    const beyond = await api.get(path, { range: "bytes=2000000-2000010" });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get("content-range")).toBe(`bytes */${data.length}`);
    const inverted = await api.get(path, { range: "bytes=5-1" });
    expect(inverted.status).toBe(416);
    expect(await inverted.text()).toContain("Invalid Range header.");
    expect(inverted.headers.get("content-range")).toBe(`bytes */${data.length}`);
    const head = await api.request("HEAD", path);
    expect(head.status).toBe(405);
    expect(head.headers.get("allow")).toBe("GET, PUT");
  });

  it("deactivates and reactivates (204, idempotent), refuses to deactivate a queued image (403)", async () => {
    const id = await activeImage(prng(10, 5000));
    for (const action of ["deactivate", "deactivate"]) {
      expect((await api.request("POST", `/v2/images/${id}/actions/${action}`)).status).toBe(204);
    }
    expect(((await (await api.get(`/v2/images/${id}`)).json()) as { status: string }).status).toBe(
      "deactivated",
    );
    // The embedded default has one local user who is an admin: deactivated data stays readable.
    expect((await api.get(`/v2/images/${id}/file`)).status).toBe(200);
    expect((await api.request("POST", `/v2/images/${id}/actions/reactivate`)).status).toBe(204);
    expect(((await (await api.get(`/v2/images/${id}`)).json()) as { status: string }).status).toBe("active");
    const queued = await api.createImage({ name: "q" });
    const res = await api.request("POST", `/v2/images/${queued.id}/actions/deactivate`);
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("Not allowed to deactivate image in status &#x27;queued&#x27;");
  });

  it("deletes with 204, then answers 404 to GET, GET file and DELETE; protected images are 403", async () => {
    const id = await activeImage(prng(11, 5000), { protected: true });
    const refused = await api.request("DELETE", `/v2/images/${id}`);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain(`Image ${id} is protected and cannot be deleted.`);
    expect((await api.patch(id, [{ op: "replace", path: "/protected", value: false }])).status).toBe(200);
    expect((await api.request("DELETE", `/v2/images/${id}`)).status).toBe(204);
    expect((await api.get(`/v2/images/${id}`)).status).toBe(404);
    expect((await api.get(`/v2/images/${id}/file`)).status).toBe(404);
    const again = await api.request("DELETE", `/v2/images/${id}`);
    expect(again.status).toBe(404);
    expect(await again.text()).toContain(`Failed to find image ${id} to delete`);
  });

  it("answers errors in JSON when the client accepts JSON, in Glance's HTML otherwise", async () => {
    const id = "00000000-0000-0000-0000-000000000000";
    const html = await api.get(`/v2/images/${id}`);
    expect(html.headers.get("content-type")).toBe("text/html; charset=UTF-8");
    expect(await html.text()).toContain(`<h1>404 Not Found</h1>\n  No image found with ID ${id}`);
    const json = await api.get(`/v2/images/${id}`, { accept: "application/json" });
    expect(await json.json()).toEqual({
      code: "404 Not Found",
      title: "Not Found",
      message: `No image found with ID ${id}`,
    });
  });
});

describe("create validation", () => {
  const post = (body: string) =>
    fetch(api.url("/v2/images"), { method: "POST", headers: { "content-type": "application/json" }, body });

  it("refuses read-only attributes and reserved os_glance_* properties with 403", async () => {
    for (const [body, msg] of [
      [{ name: "x", status: "active" }, "Attribute &#x27;status&#x27; is read-only."],
      [{ name: "x", checksum: "abc" }, "Attribute &#x27;checksum&#x27; is read-only."],
      [{ name: "x", os_glance_foo: "x" }, "Attribute &#x27;os_glance_foo&#x27; is reserved."],
      [{ name: "x", deleted: "x" }, "Attribute &#x27;deleted&#x27; is reserved."],
    ] as const) {
      const res = await post(JSON.stringify(body));
      expect(res.status).toBe(403);
      expect(await res.text()).toContain(msg);
    }
  });

  it("refuses values outside the schema with 400 naming the enum, and malformed JSON with 400", async () => {
    const res = await post(JSON.stringify({ name: "bad", disk_format: "exe", container_format: "bare" }));
    expect(res.status).toBe(400);
    expect(await res.text()).toContain(
      "Provided object does not match schema &#x27;image&#x27;: &#x27;exe&#x27; is not one of",
    );
    for (const body of [
      JSON.stringify({ name: 5 }),
      JSON.stringify({ name: "x".repeat(256) }),
      JSON.stringify({ min_ram: "lots" }),
      JSON.stringify({ min_ram: -1 }),
      JSON.stringify({ visibility: "everyone" }),
      JSON.stringify({ tags: "notalist" }),
      JSON.stringify({ custom: 5 }),
      JSON.stringify({ id: "not-a-uuid" }),
      JSON.stringify([1, 2]),
      '{"name":',
    ]) {
      expect((await post(body)).status, body).toBe(400);
    }
  });

  it("refuses an explicit id that exists with 409", async () => {
    const img = await api.createImage({ name: "one" });
    const res = await post(JSON.stringify({ id: img.id, name: "dup" }));
    expect(res.status).toBe(409);
  });
});

describe("JSON patch", () => {
  it("adds, replaces and removes custom and core properties as Glance does", async () => {
    const img = await api.createImage({
      name: "p",
      disk_format: "raw",
      container_format: "bare",
      my_prop: "v1",
    });
    const res = await api.patch(img.id, [
      { op: "add", path: "/hw_disk_bus", value: "virtio" },
      { op: "replace", path: "/name", value: "renamed" },
      { op: "replace", path: "/min_ram", value: 128 },
      { op: "replace", path: "/my_prop", value: "v2" },
      { op: "add", path: "/name", value: "renamed-again" },
    ]);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      hw_disk_bus: "virtio",
      name: "renamed-again",
      min_ram: 128,
      my_prop: "v2",
    });
    const removed = (await (await api.patch(img.id, [{ op: "remove", path: "/my_prop" }])).json()) as object;
    expect(removed).not.toHaveProperty("my_prop");
    const tags = await api.patch(img.id, [{ op: "replace", path: "/tags", value: ["ex", "t2", "ex"] }]);
    expect(((await tags.json()) as { tags: string[] }).tags.sort()).toEqual(["ex", "t2"]);
    const v20 = await api.patch(
      img.id,
      [{ add: "/v20prop", value: "y" }],
      "application/openstack-images-v2.0-json-patch",
    );
    expect(await v20.json()).toMatchObject({ v20prop: "y" });
  });

  it("answers 409 for missing properties, 403 for read-only ones and for formats of a non-queued image, 400 for bad ops, 415 for other media types", async () => {
    const id = await activeImage(prng(12, 1000));
    const cases: [unknown, number, string][] = [
      [[{ op: "remove", path: "/nope" }], 409, "Property nope does not exist."],
      [[{ op: "replace", path: "/nope", value: "x" }], 409, "Property nope does not exist."],
      [
        [{ op: "replace", path: "/status", value: "queued" }],
        403,
        "Attribute &#x27;status&#x27; is read-only.",
      ],
      [
        [{ op: "replace", path: "/disk_format", value: "qcow2" }],
        403,
        "Attribute disk_format can be only replaced for a queued image.",
      ],
      [[{ op: "remove", path: "/name" }], 403, ""],
      [
        [{ op: "move", path: "/x", from: "/y" }],
        400,
        "Invalid operation: `move`. It must be one of the following: add, remove, replace.",
      ],
      [[{ op: "add", path: "/x" }], 400, ""],
      [[{ op: "add", path: "/min_ram", value: "lots" }], 400, ""],
      [[{ op: "add", path: "/a/b", value: "x" }], 400, ""],
      [{ op: "add" }, 400, ""],
    ];
    for (const [ops, status, msg] of cases) {
      const res = await api.patch(id, ops);
      expect(res.status, JSON.stringify(ops)).toBe(status);
      expect(await res.text()).toContain(msg);
    }
    const wrongType = await api.patch(id, [{ op: "add", path: "/x", value: "y" }], "application/json");
    expect(wrongType.status).toBe(415);
    expect(wrongType.headers.get("accept-patch")).toContain("application/openstack-images-v2.1-json-patch");
    // Nothing of the refused patches stuck.
    expect(await (await api.get(`/v2/images/${id}`)).json()).not.toHaveProperty("x");
  });

  it("applies a patch all or nothing", async () => {
    const img = await api.createImage({ name: "atomic" });
    const res = await api.patch(img.id, [
      { op: "add", path: "/first", value: "1" },
      { op: "remove", path: "/missing" },
    ]);
    expect(res.status).toBe(409);
    expect(await (await api.get(`/v2/images/${img.id}`)).json()).not.toHaveProperty("first");
  });
});

describe("tags", () => {
  it("adds a tag with PUT (204), removes it with DELETE (204), and answers 404 for a tag the image lacks", async () => {
    const img = await api.createImage({ name: "t" });
    expect((await api.request("PUT", `/v2/images/${img.id}/tags/newtag`)).status).toBe(204);
    expect((await api.request("PUT", `/v2/images/${img.id}/tags/newtag`)).status).toBe(204);
    expect(((await (await api.get(`/v2/images/${img.id}`)).json()) as { tags: string[] }).tags).toEqual([
      "newtag",
    ]);
    expect((await api.request("DELETE", `/v2/images/${img.id}/tags/newtag`)).status).toBe(204);
    expect((await api.request("DELETE", `/v2/images/${img.id}/tags/newtag`)).status).toBe(404);
    expect((await api.request("PUT", `/v2/images/00000000-0000-0000-0000-000000000000/tags/x`)).status).toBe(
      404,
    );
  });
});

describe("method handling", () => {
  it("answers a known path with an unsupported method with 405 and Allow, and unknown paths with 404", async () => {
    const res = await api.request("DELETE", "/v2/images");
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, POST");
    expect((await api.get("/v2/nope")).status).toBe(404);
    expect((await api.get("/v2/schemas/nope")).status).toBe(404);
  });
});
