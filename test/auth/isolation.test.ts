/**
 * Tenant isolation over shared storage: two tenants upload the same image, which is stored
 * once; each sees only its own; deleting one leaves the other whole; and nothing a tenant gets
 * back (status, headers, body) tells it whether another tenant's private image exists.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { withToken, writeTokens } from "../helpers/tenants.js";

const TOKENS = {
  alice: { project: "alpha", user: "alice", roles: ["member"] },
  bob: { project: "beta", user: "bob", roles: ["member"] },
  root: { project: "ops", user: "root", roles: ["admin"] },
};
const DATA = randomBytes(3 * 1024 * 1024);

let dir: string;
let s: TestServer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tessera-isolation-"));
  const file = await writeTokens(dir, TOKENS);
  s = await startTestServer({ auth: { mode: "tokens", tokensFile: file }, gcIntervalSeconds: 0 });
});
afterAll(async () => {
  await s?.close();
  if (s) await rm(s.dataDir, { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });
});

function as(who: keyof typeof TOKENS) {
  return withToken(() => s.url, `${who}-token`);
}

async function privateImage(who: keyof typeof TOKENS, name: string): Promise<string> {
  const call = as(who);
  const res = await call("POST", "/v2/images", {
    name,
    visibility: "private",
    disk_format: "raw",
    container_format: "bare",
  });
  const id = ((await res.json()) as { id: string }).id;
  expect((await call("PUT", `/v2/images/${id}/file`, DATA, "application/octet-stream")).status).toBe(204);
  return id;
}

describe("two tenants with the same image", () => {
  let a: string;
  let b: string;
  beforeAll(async () => {
    a = await privateImage("alice", "same");
    b = await privateImage("bob", "same");
  });

  test("the bytes are stored once, and each tenant lists only its own copy", async () => {
    const stats = (await (await as("root")("GET", "/tessera/v1/stats")).json()) as {
      total: { logicalBytes: number; storedBytes: number };
    };
    expect(stats.total.logicalBytes).toBe(2 * DATA.length);
    expect(stats.total.storedBytes).toBeLessThan(DATA.length * 1.01);
    for (const [who, own, other] of [
      ["alice", a, b],
      ["bob", b, a],
    ] as const) {
      const list = (await (await as(who)("GET", "/v2/images")).json()) as { images: { id: string }[] };
      expect(list.images.map((i) => i.id)).toEqual([own]);
      expect((await as(who)("GET", `/v2/images/${other}`)).status).toBe(404);
      expect((await as(who)("GET", `/v2/images/${other}/file`)).status).toBe(404);
    }
  });

  test("the same data gives neither tenant a way to the other's image: the dedup accounting is admin-only", async () => {
    expect((await as("alice")("GET", `/tessera/v1/images/${b}/stats`)).status).toBe(403);
    expect((await as("alice")("GET", `/tessera/v1/images/${a}/stats`)).status).toBe(403);
    expect((await as("alice")("GET", "/tessera/v1/stats")).status).toBe(403);
  });

  test("another tenant's private image is indistinguishable from one that never existed, on every route", async () => {
    const never = randomUUID();
    const alice = as("alice");
    const probes: [string, (id: string) => string, unknown?, string?][] = [
      ["GET", (id) => `/v2/images/${id}`],
      ["GET", (id) => `/v2/images/${id}/file`],
      ["PUT", (id) => `/v2/images/${id}/file`, Buffer.from("x"), "application/octet-stream"],
      [
        "PATCH",
        (id) => `/v2/images/${id}`,
        [{ op: "replace", path: "/name", value: "x" }],
        "application/openstack-images-v2.1-json-patch",
      ],
      ["DELETE", (id) => `/v2/images/${id}`],
      ["PUT", (id) => `/v2/images/${id}/tags/t`],
      ["DELETE", (id) => `/v2/images/${id}/tags/t`],
      ["POST", (id) => `/v2/images/${id}/actions/deactivate`],
      ["POST", (id) => `/v2/images/${id}/actions/reactivate`],
      ["GET", (id) => `/v2/images/${id}/members`],
      ["POST", (id) => `/v2/images/${id}/members`, { member: "alpha" }],
      ["GET", (id) => `/v2/images/${id}/members/alpha`],
      ["PUT", (id) => `/v2/images/${id}/members/alpha`, { status: "accepted" }],
      ["DELETE", (id) => `/v2/images/${id}/members/alpha`],
      ["DELETE", (id) => `/v2/stores/local/${id}`],
      ["GET", (id) => `/v2/images?marker=${id}`],
      ["GET", (id) => `/v2/images?id=${id}`],
    ];
    const seen = async (method: string, path: string, body?: unknown, type?: string) => {
      const res = await alice(method, path, body, type);
      const headers = [...res.headers.entries()].filter(
        ([k]) => k !== "date" && k !== "x-openstack-request-id",
      );
      return { status: res.status, headers, body: await res.text() };
    };
    for (const [method, path, body, type] of probes) {
      const hidden = await seen(method, path(b), body, type);
      const missing = await seen(method, path(never), body, type);
      const norm = (x: typeof hidden, id: string) => ({ ...x, body: x.body.replaceAll(id, "<id>") });
      expect(norm(hidden, b), `${method} ${path("{id}")}`).toEqual(norm(missing, never));
      expect(hidden.status, `${method} ${path("{id}")}`).not.toBe(500);
    }
    // And bob's image is untouched by all of that.
    const got = await as("bob")("GET", `/v2/images/${b}/file`);
    expect(Buffer.from(await got.arrayBuffer()).equals(DATA)).toBe(true);
  });

  test("deleting one tenant's copy, and collecting garbage, leaves the other's whole and downloadable", async () => {
    expect((await as("alice")("DELETE", `/v2/images/${a}`)).status).toBe(204);
    const gc = await as("root")("POST", "/tessera/v1/gc", { graceSeconds: 0 });
    expect(gc.status).toBe(200);
    const got = await as("bob")("GET", `/v2/images/${b}/file`);
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(DATA)).toBe(true);
    const list = (await (await as("bob")("GET", "/v2/images")).json()) as { images: { id: string }[] };
    expect(list.images.map((i) => i.id)).toEqual([b]);
  });
});

test("creating an image with another tenant's private id is the 409 of any taken id, naming no owner", async () => {
  const theirs = await privateImage("bob", "theirs");
  const mine = await privateImage("alice", "mine");
  const body = (id: string) => ({ id, name: "x", disk_format: "raw", container_format: "bare" });
  const r1 = await as("alice")("POST", "/v2/images", body(theirs));
  const r2 = await as("alice")("POST", "/v2/images", body(mine));
  expect(r1.status).toBe(409); // as Glance: the id is the primary key
  expect(r2.status).toBe(409);
  const t1 = (await r1.text()).replaceAll(theirs, "ID");
  const t2 = (await r2.text()).replaceAll(mine, "ID");
  expect(t1).toBe(t2);
  expect(t1).not.toMatch(/beta|bob|alpha|alice/);
});
