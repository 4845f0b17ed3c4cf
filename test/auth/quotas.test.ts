/**
 * Per-project quotas with Glance's unified-limit names, and per-image caps: 413 with Glance's
 * words when exceeded, nothing half-written, usage as GET /v2/info/usage reports it, counted in
 * the logical bytes a project owns however much deduplication saves.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { withToken, writeTokens } from "../helpers/tenants.js";
import { waitFor } from "../helpers/wait.js";

const MiB = 1024 * 1024;
const PEOPLE = {
  alice: { project: "alpha", user: "alice", roles: ["member"] },
  bob: { project: "beta", user: "bob", roles: ["member"] },
  carol: { project: "gamma", user: "carol", roles: ["member"] },
};

let dir: string;
let s: TestServer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tessera-quotas-"));
  const file = await writeTokens(dir, PEOPLE);
  s = await startTestServer({
    auth: { mode: "tokens", tokensFile: file },
    quotas: {
      default: { image_count_total: 3, image_size_total: 2, image_count_uploading: 1, image_stage_total: 1 },
      projects: { beta: { image_count_total: -1 } },
    },
    imageMemberQuota: 2,
  });
});
afterAll(async () => {
  await s?.close();
  if (s) await rm(s.dataDir, { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });
});

function as(who: keyof typeof PEOPLE) {
  return withToken(() => s.url, `${who}-token`);
}

async function create(who: keyof typeof PEOPLE, extra: Record<string, unknown> = {}): Promise<Response> {
  return as(who)("POST", "/v2/images", { name: "q", disk_format: "raw", container_format: "bare", ...extra });
}

async function usage(who: keyof typeof PEOPLE) {
  return (
    (await (await as(who)("GET", "/v2/info/usage")).json()) as {
      usage: Record<string, { limit: number; usage: number }>;
    }
  ).usage;
}

const ONE_AND_HALF = randomBytes(1.5 * MiB);

test("image_count_total: the fourth image is refused with 413 and Glance's words; deleting one makes room", async () => {
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await create("alice");
    expect(res.status).toBe(201);
    ids.push(((await res.json()) as { id: string }).id);
  }
  const over = await create("alice");
  expect(over.status).toBe(413);
  expect(((await over.json()) as { message: string }).message).toContain(
    "Resource image_count_total is over limit of 3 due to current usage 3 and delta 1",
  );
  expect((await usage("alice")).image_count_total).toEqual({ limit: 3, usage: 3 });
  expect((await as("alice")("DELETE", `/v2/images/${ids.pop()}`)).status).toBe(204);
  expect((await create("alice")).status).toBe(201);
  // beta has no count limit of its own (-1).
  for (let i = 0; i < 4; i++) expect((await create("bob")).status).toBe(201);
  expect((await usage("bob")).image_count_total).toEqual({ limit: -1, usage: 4 });
});

test("image_size_total: an upload past the project's room is refused with 413, its image left queued, nothing counted", async () => {
  const list = (await (await as("alice")("GET", "/v2/images")).json()) as { images: { id: string }[] };
  const [first, second] = list.images.map((i) => i.id) as [string, string];
  expect(
    (await as("alice")("PUT", `/v2/images/${first}/file`, ONE_AND_HALF, "application/octet-stream")).status,
  ).toBe(204);
  const over = await as("alice")(
    "PUT",
    `/v2/images/${second}/file`,
    randomBytes(MiB),
    "application/octet-stream",
  );
  expect(over.status).toBe(413);
  expect(((await over.json()) as { message: string }).message).toContain(
    "Resource image_size_total is over limit of 2",
  );
  const img = (await (await as("alice")("GET", `/v2/images/${second}`)).json()) as {
    status: string;
    size: unknown;
  };
  expect(img).toMatchObject({ status: "queued", size: null });
  expect((await usage("alice")).image_size_total).toEqual({ limit: 2, usage: 1 });
});

test("quotas count logical bytes: a second tenant uploading the same bytes pays for them, though they are stored once", async () => {
  const id = ((await (await create("bob")).json()) as { id: string }).id;
  expect(
    (await as("bob")("PUT", `/v2/images/${id}/file`, ONE_AND_HALF, "application/octet-stream")).status,
  ).toBe(204);
  expect((await usage("bob")).image_size_total).toEqual({ limit: 2, usage: 1 });
  const again = ((await (await create("bob")).json()) as { id: string }).id;
  const over = await as("bob")("PUT", `/v2/images/${again}/file`, ONE_AND_HALF, "application/octet-stream");
  expect(over.status).toBe(413);
});

test("image_count_uploading: a second upload while one is in progress is refused; after it ends, it goes through", async () => {
  const a = ((await (await create("carol")).json()) as { id: string }).id;
  const b = ((await (await create("carol")).json()) as { id: string }).id;
  const slow = request(`${s.url}/v2/images/${a}/file`, {
    method: "PUT",
    headers: { "X-Auth-Token": "carol-token", "Content-Type": "application/octet-stream" },
  });
  const done = new Promise<number>((resolve, reject) => {
    slow.on("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    slow.on("error", reject);
  });
  slow.write(randomBytes(64 * 1024));
  // Wait until the first upload is under way (its image saving).
  await waitFor("the first upload to be saving", async () => {
    const img = (await (await as("carol")("GET", `/v2/images/${a}`)).json()) as { status: string };
    return img.status === "saving";
  });
  expect((await usage("carol")).image_count_uploading).toEqual({ limit: 1, usage: 1 });
  const second = await as("carol")(
    "PUT",
    `/v2/images/${b}/file`,
    randomBytes(1000),
    "application/octet-stream",
  );
  expect(second.status).toBe(413);
  expect(((await second.json()) as { message: string }).message).toContain("image_count_uploading");
  slow.end(randomBytes(64 * 1024));
  expect(await done).toBe(204);
  expect(
    (await as("carol")("PUT", `/v2/images/${b}/file`, randomBytes(1000), "application/octet-stream")).status,
  ).toBe(204);
  expect((await usage("carol")).image_count_uploading).toEqual({ limit: 1, usage: 0 });
});

test("imageMemberQuota: the third member of an image is refused with 413", async () => {
  const id = ((await (await create("bob", { visibility: "shared" })).json()) as { id: string }).id;
  for (const m of ["p1", "p2"]) {
    expect((await as("bob")("POST", `/v2/images/${id}/members`, { member: m })).status).toBe(200);
  }
  const over = await as("bob")("POST", `/v2/images/${id}/members`, { member: "p3" });
  expect(over.status).toBe(413);
  expect(((await over.json()) as { message: string }).message).toContain("Attempted: 3, Maximum: 2");
});

test("image_stage_total: a stage past the project's staging room is refused with 413, the image queued again", async () => {
  const id = ((await (await create("carol")).json()) as { id: string }).id;
  const over = await as("carol")("PUT", `/v2/images/${id}/stage`, ONE_AND_HALF, "application/octet-stream");
  expect(over.status).toBe(413);
  expect(((await over.json()) as { message: string }).message).toContain(
    "Resource image_stage_total is over limit of 1",
  );
  expect(((await (await as("carol")("GET", `/v2/images/${id}`)).json()) as { status: string }).status).toBe(
    "queued",
  );
  expect(
    (await as("carol")("PUT", `/v2/images/${id}/stage`, randomBytes(MiB / 2), "application/octet-stream"))
      .status,
  ).toBe(204);
  expect((await usage("carol")).image_stage_total).toEqual({ limit: 1, usage: 0 });
  expect((await usage("carol")).image_count_uploading).toEqual({ limit: 1, usage: 1 });
});

test("GET /v2/info/usage reports all four quotas of the caller's project", async () => {
  expect(Object.keys(await usage("carol")).sort()).toEqual([
    "image_count_total",
    "image_count_uploading",
    "image_size_total",
    "image_stage_total",
  ]);
});
