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
