import { beforeAll, describe, expect, it } from "vitest";
import { client, sharedServer } from "../helpers/server.js";

const server = sharedServer({ maxJsonBodyBytes: 64 * 1024, imageTagQuota: 5, imagePropertyQuota: 5 });
const api = client(() => server().url);

let active = "";
let queued = "";

beforeAll(async () => {
  const a = await api.createImage({ name: "a", disk_format: "raw", container_format: "bare" });
  expect((await api.upload(a.id, "some bytes")).status).toBe(204);
  active = a.id;
  queued = (await api.createImage({ name: "q", disk_format: "raw", container_format: "bare" })).id;
});

type Case = { method: string; path: string; body?: string; headers?: Record<string, string> };

const JSON_CT = { "content-type": "application/json" };
const PATCH_CT = { "content-type": "application/openstack-images-v2.1-json-patch" };

const BAD_BODIES = [
  "",
  "{",
  "null",
  "[]",
  "123",
  '"str"',
  "{}}",
  '{"name": NaN}',
  "\u0000\u0001",
  JSON.stringify({ name: { nested: true } }),
  JSON.stringify({ tags: [1, 2] }),
  JSON.stringify({ tags: ["x".repeat(300)] }),
  JSON.stringify({ tags: ["a", "b", "c", "d", "e", "f"] }),
  JSON.stringify({ p1: "1", p2: "2", p3: "3", p4: "4", p5: "5", p6: "6" }),
  JSON.stringify({ ["k".repeat(300)]: "v" }),
  JSON.stringify({ min_disk: 1e30 }),
  JSON.stringify({ min_disk: 1.5 }),
  JSON.stringify({ protected: "yes" }),
  JSON.stringify({ os_hidden: null }),
  JSON.stringify({ owner: "o".repeat(300) }),
  JSON.stringify({ container_format: "zip" }),
  JSON.stringify({ id: "00000000-0000-0000-0000-00000000000g" }),
  JSON.stringify({ locations: [] }),
  JSON.stringify({ self: "/x" }),
  JSON.stringify({ kernel_id: "nope" }),
  JSON.stringify({ name: "big", pad: "x".repeat(70 * 1024) }),
  JSON.stringify({ name: "nul\u0000name" }),
  JSON.stringify({ tags: ["nul\u0000tag"] }),
  JSON.stringify({ "nul\u0000key": "v" }),
  JSON.stringify({ k: "nul\u0000value" }),
];

const BAD_PATCHES = [
  "",
  "{",
  "{}",
  "[1]",
  "[null]",
  '[{"op": 5, "path": "/x", "value": 1}]',
  '[{"op": "add", "path": 5, "value": 1}]',
  '[{"op": "add", "path": "x", "value": "1"}]',
  '[{"op": "add", "path": "/x~2", "value": "1"}]',
  '[{"op": "add", "path": "/", "value": "1"}]',
  '[{"op": "add", "path": "/tags", "value": "notalist"}]',
  '[{"op": "add", "path": "/tags", "value": ["a","b","c","d","e","f"]}]',
  '[{"op": "add", "path": "/visibility", "value": "everyone"}]',
  '[{"op": "add", "path": "/protected", "value": "true"}]',
  '[{"op": "replace", "path": "/id", "value": "00000000-0000-0000-0000-000000000000"}]',
  '[{"op": "add", "path": "/locations/-", "value": {"url": "file:///etc/passwd", "metadata": {}}}]',
  '[{"op": "add", "path": "/os_glance_import_task", "value": "x"}]',
  '[{"op": "add", "path": "/x", "value": {"an": "object"}}]',
  '[{"op": "add", "path": "/x", "value": 7}]',
  '[{"op": "test", "path": "/name", "value": "a"}]',
  '[{"add": "/x", "remove": "/y", "value": "1"}]',
  '[{"op": "replace", "path": "/name", "value": "nul\\u0000name"}]',
  '[{"op": "add", "path": "/tags", "value": ["nul\\u0000tag"]}]',
  '[{"op": "add", "path": "/x\\u0000", "value": "v"}]',
  '[{"op": "add", "path": "/x", "value": "nul\\u0000value"}]',
];

function cases(): Case[] {
  const ids = [
    active,
    queued,
    "not-a-uuid",
    "00000000-0000-0000-0000-000000000000",
    "%00",
    "x".repeat(2000),
    "..%2F..%2Fetc",
  ];
  const out: Case[] = [];
  for (const body of BAD_BODIES) out.push({ method: "POST", path: "/v2/images", body, headers: JSON_CT });
  out.push({ method: "POST", path: "/v2/images", body: "{}", headers: { "content-type": "text/plain" } });
  for (const body of BAD_PATCHES) {
    out.push({ method: "PATCH", path: `/v2/images/${queued}`, body, headers: PATCH_CT });
    out.push({
      method: "PATCH",
      path: `/v2/images/${active}`,
      body,
      headers: { "content-type": "application/openstack-images-v2.0-json-patch" },
    });
  }
  for (const id of ids.slice(2)) {
    out.push({ method: "GET", path: `/v2/images/${id}` });
    out.push({ method: "GET", path: `/v2/images/${id}/file` });
  }
  for (const id of ids) {
    out.push({ method: "DELETE", path: `/v2/images/${encodeURIComponent(id)}x` });
    out.push({
      method: "PATCH",
      path: `/v2/images/${id}`,
      body: "[]",
      headers: { "content-type": "text/plain" },
    });
    out.push({
      method: "PUT",
      path: `/v2/images/${id}/file`,
      body: "data",
      headers: { "content-type": "text/plain" },
    });
    out.push({ method: "PUT", path: `/v2/images/${id}/tags/${"t".repeat(300)}` });
    out.push({ method: "DELETE", path: `/v2/images/${id}/tags/absent` });
    out.push({ method: "POST", path: `/v2/images/${id}/actions/explode` });
    if (id !== active) out.push({ method: "POST", path: `/v2/images/${id}/actions/reactivate` });
  }
  // Members: the image is shared (the default visibility), the bodies are not right.
  for (const body of [
    "",
    "{",
    "null",
    "[]",
    "{}",
    '{"member": 5}',
    '{"member": ""}',
    `{"member": "${"m".repeat(300)}"}`,
  ]) {
    out.push({ method: "POST", path: `/v2/images/${active}/members`, body, headers: JSON_CT });
  }
  for (const body of ["", "{", "[]", "{}", '{"status": "maybe"}', '{"status": 5}']) {
    out.push({ method: "PUT", path: `/v2/images/${active}/members/absent`, body, headers: JSON_CT });
  }
  for (const id of ids.slice(2)) {
    out.push({ method: "GET", path: `/v2/images/${id}/members` });
    out.push({ method: "DELETE", path: `/v2/images/${id}/members/absent` });
  }
  out.push({ method: "GET", path: `/v2/images/${active}/members/absent` });
  for (const range of ["bytes=0-1,2-3", "bytes=99999999-", "bytes=-0"]) {
    out.push({ method: "GET", path: `/v2/images/${active}/file`, headers: { range } });
  }
  for (const q of [
    "limit=abc",
    "limit=-5",
    "limit=1e3",
    "marker=nope",
    "sort=name:asc:extra",
    "sort_key=drop%20table",
    "sort_dir=up",
    "sort_key=name&sort_dir=asc&sort_dir=desc",
    "created_at=gt:notatime",
    "updated_at=in:a,b",
    "size_min=-1",
    "size_max=1.5",
    "os_hidden=perhaps",
    "visibility=",
    "name=bogus:op",
    "min_ram=lots",
  ]) {
    out.push({ method: "GET", path: `/v2/images?${q}` });
  }
  out.push({
    method: "PUT",
    path: `/v2/images/${active}/file`,
    body: "again",
    headers: { "content-type": "application/octet-stream" },
  });
  out.push({ method: "PUT", path: "/v2/images", body: "{}" });
  out.push({ method: "GET", path: "/v2/schemas/nope" });
  out.push({ method: "GET", path: "/v3/images" });
  return out;
}

describe("bad input", () => {
  it("answers every request of the battery with a 4xx and a Glance-shaped body, never a 5xx", async () => {
    const battery = cases();
    expect(battery.length).toBeGreaterThan(140);
    for (const c of battery) {
      const res = await fetch(api.url(c.path), { method: c.method, headers: c.headers, body: c.body });
      const label = `${c.method} ${c.path.slice(0, 80)} ${c.body?.slice(0, 80) ?? ""} ${JSON.stringify(c.headers ?? {})}`;
      expect(res.status, label).toBeGreaterThanOrEqual(400);
      expect(res.status, label).toBeLessThan(500);
      const text = await res.text();
      if (c.method !== "HEAD") expect(text, label).toMatch(/<h1>4\d\d /);
    }
  });

  it("changes nothing through refused requests: both images are as they were", async () => {
    const a = (await (await api.get(`/v2/images/${active}`)).json()) as Record<string, unknown>;
    expect(a).toMatchObject({ status: "active", size: 10, name: "a", tags: [] });
    const q = (await (await api.get(`/v2/images/${queued}`)).json()) as Record<string, unknown>;
    expect(q).toMatchObject({ status: "queued", name: "q", tags: [] });
    expect(Object.keys(q)).not.toContain("x");
    const members = (await (await api.get(`/v2/images/${active}/members`)).json()) as { members: unknown[] };
    expect(members.members).toEqual([]);
    const body = Buffer.from(await (await api.get(`/v2/images/${active}/file`)).arrayBuffer());
    expect(body.toString()).toBe("some bytes");
  });

  it("answers raw malformed HTTP without crashing the server", async () => {
    const { connect } = await import("node:net");
    const url = new URL(server().url);
    for (const raw of [
      "GARBAGE\r\n\r\n",
      "GET /v2/images HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
      "PUT /v2/images/x/file HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ]) {
      await new Promise<void>((resolve) => {
        const s = connect(Number(url.port), url.hostname, () => s.end(raw));
        s.on("data", () => {});
        s.on("close", () => resolve());
        s.on("error", () => resolve());
      });
    }
    expect((await api.get("/v2/images")).status).toBe(200);
  });
});

/**
 * NUL is refused in every string an image stores; Glance's other control characters are not
 * (docs/api.md has the table). The bodies are webob's JSON form, asked for with Accept.
 */
describe("NUL and control characters", () => {
  const accept = { accept: "application/json" };
  const create = (body: Record<string, unknown>) =>
    fetch(api.url("/v2/images"), {
      method: "POST",
      headers: { ...JSON_CT, ...accept },
      body: JSON.stringify(body),
    });
  const patch = (id: string, ops: unknown[]) =>
    fetch(api.url(`/v2/images/${id}`), {
      method: "PATCH",
      headers: { ...PATCH_CT, ...accept },
      body: JSON.stringify(ops),
    });
  const show = async (id: string) =>
    (await (await api.get(`/v2/images/${id}`)).json()) as Record<string, unknown>;
  async function expectRefused(res: Response, message: string) {
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ message, code: "400 Bad Request", title: "Bad Request" });
  }

  it("refuses a NUL in the name or the owner on create and on PATCH add and replace, changing nothing", async () => {
    await expectRefused(await create({ name: "a\u0000b" }), "Name can't contain NUL characters.");
    await expectRefused(await create({ owner: "p\u0000" }), "Owner can't contain NUL characters.");
    const { id } = await api.createImage({ name: "plain" });
    for (const op of ["add", "replace"]) {
      await expectRefused(
        await patch(id, [{ op, path: "/name", value: "\u0000" }]),
        "Name can't contain NUL characters.",
      );
    }
    await expectRefused(
      await patch(id, [{ op: "replace", path: "/owner", value: "p\u0000" }]),
      "Owner can't contain NUL characters.",
    );
    expect(await show(id)).toMatchObject({ name: "plain", owner: null });
  });

  it("refuses a NUL in a tag on create, on PATCH and through PUT /tags/{tag}", async () => {
    await expectRefused(await create({ tags: ["ok", "t\u0000"] }), "Tags can't contain NUL characters.");
    const { id } = await api.createImage({ name: "tagged", tags: ["ok"] });
    for (const op of ["add", "replace"]) {
      await expectRefused(
        await patch(id, [{ op, path: "/tags", value: ["ok", "t\u0000"] }]),
        "Tags can't contain NUL characters.",
      );
    }
    const put = await fetch(api.url(`/v2/images/${id}/tags/t%00`), { method: "PUT", headers: accept });
    await expectRefused(put, "Tags can't contain NUL characters.");
    expect((await show(id)).tags).toEqual(["ok"]);
  });

  it("refuses a NUL in a property key on create and on PATCH add", async () => {
    await expectRefused(await create({ "k\u0000": "v" }), "Property names can't contain NUL characters.");
    const { id } = await api.createImage({ name: "keys" });
    await expectRefused(
      await patch(id, [{ op: "add", path: "/k\u0000", value: "v" }]),
      "Property names can't contain NUL characters.",
    );
    expect(Object.keys(await show(id)).filter((k) => k.startsWith("k"))).toEqual([]);
  });

  it("refuses a NUL in a property value on create and on PATCH, but keeps tabs, newlines and other control characters as Glance does", async () => {
    await expectRefused(await create({ os_distro: "x\u0000" }), "Os_Distro can't contain NUL characters.");
    await expectRefused(await create({ hw_x: "\u0000" }), "Hw_X can't contain NUL characters.");
    const controls = "tab\there\nline\r\u0001\u001f\u007f";
    const img = await api.createImage({ name: `n${controls}`, tags: [controls], description: controls });
    expect(img).toMatchObject({ name: `n${controls}`, tags: [controls], description: controls });
    for (const op of ["add", "replace"]) {
      await expectRefused(
        await patch(img.id, [{ op, path: "/description", value: "\u0000" }]),
        "Description can't contain NUL characters.",
      );
    }
    const ok = await patch(img.id, [{ op: "add", path: "/k\u0001", value: controls }]);
    expect(ok.status).toBe(200);
    expect(await show(img.id)).toMatchObject({ description: controls, "k\u0001": controls });
  });

  it("refuses a NUL in a member id", async () => {
    const { id } = await api.createImage({ name: "shared", visibility: "shared" });
    const res = await fetch(api.url(`/v2/images/${id}/members`), {
      method: "POST",
      headers: { ...JSON_CT, ...accept },
      body: JSON.stringify({ member: "proj\u0000ect" }),
    });
    await expectRefused(res, "Member can't contain NUL characters.");
  });
});
