/**
 * Interoperable image import over HTTP: stage + glance-direct, web-download from a server on
 * 127.0.0.1, copy-image between stores, the tasks they run as, the import lock, the plugins,
 * and Glance's refusals.
 */
import { randomBytes } from "node:crypto";
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ImageRecord } from "../../src/catalog/image-records.js";
import type { TaskRecord } from "../../src/catalog/task-records.js";
import { task } from "../catalog/catalog-fixtures.js";
import { type S3rver, startS3rver } from "../helpers/s3.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { waitFor } from "../helpers/wait.js";
import { onlyFrom, startWebServer, type WebServer } from "../helpers/web.js";

const MiB = 1024 * 1024;
let web: WebServer;
let s: TestServer;

beforeAll(async () => {
  web = await startWebServer();
  s = await startTestServer({
    stores: {
      local: { type: "filesystem", description: "local" },
      extra: { type: "filesystem", description: "extra" },
    },
    defaultStore: "local",
    // Test-only: the web server the tests start on loopback.
    importFilter: onlyFrom(web),
    webDownloadIdleTimeoutSeconds: 1,
  });
});
afterAll(async () => {
  await s?.close();
  if (s) await rm(s.dataDir, { recursive: true, force: true });
  await web?.close();
});

const json = { "Content-Type": "application/json", Accept: "application/json" };

async function call(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${s.url}${path}`, {
    method,
    headers: json,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function newImage(extra: Record<string, unknown> = {}): Promise<string> {
  const res = await call("POST", "/v2/images", {
    name: "imp",
    disk_format: "raw",
    container_format: "bare",
    ...extra,
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function image(id: string): Promise<Record<string, unknown> & { status: string; stores?: string }> {
  return (await (await call("GET", `/v2/images/${id}`)).json()) as Record<string, unknown> & {
    status: string;
    stores?: string;
  };
}

/** Polls until the image leaves importing (or its import task ends). */
async function settled(id: string): Promise<Record<string, unknown> & { status: string; stores?: string }> {
  return waitFor(`image ${id} to settle`, async () => {
    const img = await image(id);
    return img.status !== "importing" && !("os_glance_import_task" in img) && img;
  });
}

async function stage(id: string, data: Buffer): Promise<Response> {
  return fetch(`${s.url}/v2/images/${id}/stage`, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream" },
    body: new Uint8Array(data),
  });
}

async function download(id: string): Promise<Buffer> {
  return Buffer.from(await (await fetch(`${s.url}/v2/images/${id}/file`)).arrayBuffer());
}

async function packBytes(): Promise<number> {
  let total = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (p.includes("packs")) total += (await stat(p)).size;
    }
  };
  await walk(s.dataDir);
  return total;
}

describe("discovery", () => {
  test("GET /v2/info/import lists the methods, and image creation names them in a header", async () => {
    const info = await (await call("GET", "/v2/info/import")).json();
    expect(info).toEqual({
      "import-methods": {
        description: "Import methods available.",
        type: "array",
        value: ["glance-direct", "web-download", "copy-image"],
      },
    });
    const res = await call("POST", "/v2/images", { name: "h" });
    expect(res.headers.get("openstack-image-import-methods")).toBe("glance-direct,web-download,copy-image");
    expect(res.headers.get("openstack-image-store-ids")).toBe("local,extra");
  });
});

describe("glance-direct", () => {
  test("stage (uploading, with its size), import (202, importing), active with the staged bytes; staging wrote them once", async () => {
    const data = randomBytes(3 * MiB);
    const id = await newImage();
    const before = await packBytes();
    expect((await stage(id, data)).status).toBe(204);
    const staged = await image(id);
    expect(staged).toMatchObject({ status: "uploading", size: data.length, checksum: null });
    const afterStage = await packBytes();
    expect(afterStage - before).toBeGreaterThanOrEqual(data.length);
    const res = await call("POST", `/v2/images/${id}/import`, { method: { name: "glance-direct" } });
    expect(res.status).toBe(202);
    expect(await res.text()).toBe("");
    const done = await settled(id);
    expect(done).toMatchObject({
      status: "active",
      size: data.length,
      stores: "local",
      os_glance_importing_to_stores: "",
      os_glance_failed_import: "",
    });
    expect((await download(id)).equals(data)).toBe(true);
    // No second copy: the import wrote no new packs.
    expect(await packBytes()).toBe(afterStage);
  });

  test("the task: in the image's task list (Glance's record shape) and, for admins, in /v2/tasks", async () => {
    const id = await newImage();
    await stage(id, randomBytes(1.5 * MiB));
    await call("POST", `/v2/images/${id}/import`, { method: { name: "glance-direct" }, stores: ["local"] });
    await settled(id);
    const tasks = (
      (await (await call("GET", `/v2/images/${id}/tasks`)).json()) as { tasks: Record<string, unknown>[] }
    ).tasks;
    expect(tasks).toHaveLength(1);
    const t = tasks[0] as Record<string, unknown>;
    expect(t).toMatchObject({
      type: "api_image_import",
      status: "success",
      image_id: id,
      deleted: false,
      deleted_at: null,
      result: { image_id: id },
      message: "Copied 1 MiB",
      input: {
        image_id: id,
        import_req: { method: { name: "glance-direct" }, stores: ["local"] },
        backend: ["local"],
      },
    });
    expect(String(t.created_at)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
    const one = (await (await call("GET", `/v2/tasks/${t.id}`)).json()) as Record<string, unknown>;
    expect(one).toMatchObject({
      id: t.id,
      status: "success",
      self: `/v2/tasks/${t.id}`,
      schema: "/v2/schemas/task",
    });
    const list = (await (await call("GET", "/v2/tasks?limit=1")).json()) as {
      tasks: { id: string }[];
      next?: string;
      schema: string;
    };
    expect(list.tasks).toHaveLength(1);
    expect(list.schema).toBe("/v2/schemas/tasks");
    expect(list.next).toMatch(/marker=/);
    expect((await call("GET", `/v2/tasks/${"0".repeat(8)}-0000-0000-0000-${"0".repeat(12)}`)).status).toBe(
      404,
    );
  });

  test("Glance's refusals: not staged 409, unknown method 400, active image 409, stage twice 409", async () => {
    const id = await newImage();
    const notStaged = await call("POST", `/v2/images/${id}/import`, { method: { name: "glance-direct" } });
    expect(notStaged.status).toBe(409);
    expect(((await notStaged.json()) as { message: string }).message).toBe(
      "Image needs to be staged before 'glance-direct' method can be used",
    );
    const bogus = await call("POST", `/v2/images/${id}/import`, { method: { name: "bogus" } });
    expect(bogus.status).toBe(400);
    expect(((await bogus.json()) as { message: string }).message).toBe("Unknown import method name 'bogus'.");
    expect((await stage(id, randomBytes(1000))).status).toBe(204);
    expect((await stage(id, randomBytes(1000))).status).toBe(409);
    await call("POST", `/v2/images/${id}/import`, { method: { name: "glance-direct" } });
    await settled(id);
    const again = await call("POST", `/v2/images/${id}/import`, { method: { name: "glance-direct" } });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { message: string }).message).toBe(
      "Image with status active cannot be target for import",
    );
    for (const body of [
      {},
      { method: "glance-direct" },
      { method: { name: 5 } },
      { method: { name: "copy-image" }, stores: "extra" },
    ]) {
      expect((await call("POST", `/v2/images/${id}/import`, body)).status).toBe(400);
    }
  });

  test("an image deleted with staged data gives the staged bytes back to the collector", async () => {
    const id = await newImage();
    await stage(id, randomBytes(2 * MiB));
    expect((await call("DELETE", `/v2/images/${id}`)).status).toBe(204);
    const stats = (await (await call("GET", "/tessera/v1/stats")).json()) as {
      stores: { store: string; objects: number }[];
    };
    const before = stats.stores.find((x) => x.store === "local")?.objects ?? 0;
    // Nothing holds the staged object any more: it is not among the store's objects.
    const id2 = await newImage();
    await stage(id2, randomBytes(1000));
    const after = (await (await call("GET", "/tessera/v1/stats")).json()) as {
      stores: { store: string; objects: number }[];
    };
    expect(after.stores.find((x) => x.store === "local")?.objects).toBe(before + 1);
  });
});

describe("web-download", () => {
  test("streams the URI into the image: active, same bytes, in the store asked for", async () => {
    const data = randomBytes(2 * MiB + 123);
    web.routes.set("/disk.raw", { kind: "bytes", data });
    const id = await newImage();
    const res = await call("POST", `/v2/images/${id}/import`, {
      method: { name: "web-download", uri: `${web.url}/disk.raw` },
      stores: ["extra"],
    });
    expect(res.status).toBe(202);
    const done = await settled(id);
    expect(done).toMatchObject({ status: "active", size: data.length, stores: "extra" });
    expect((await download(id)).equals(data)).toBe(true);
  });

  test("a URI outside the filter is refused with Glance's 400 before any task", async () => {
    const id = await newImage();
    for (const uri of ["http://192.0.2.1/x.img", `ftp://127.0.0.1:${web.port}/x`, "file:///etc/passwd"]) {
      const res = await call("POST", `/v2/images/${id}/import`, { method: { name: "web-download", uri } });
      expect(res.status, uri).toBe(400);
      expect(((await res.json()) as { message: string }).message).toBe(
        `URI for web-download does not pass filtering: ${uri}`,
      );
    }
    expect((await image(id)).status).toBe("queued");
    expect(
      ((await (await call("GET", `/v2/images/${id}/tasks`)).json()) as { tasks: unknown[] }).tasks,
    ).toEqual([]);
  });

  test("a source that fails (404) fails the task with a message and leaves the image queued, importable again", async () => {
    const id = await newImage();
    await call("POST", `/v2/images/${id}/import`, {
      method: { name: "web-download", uri: `${web.url}/missing` },
    });
    const img = await settled(id);
    expect(img.status).toBe("queued");
    expect(img.os_glance_failed_import).toBe("local");
    const [t] = (
      (await (await call("GET", `/v2/images/${id}/tasks`)).json()) as {
        tasks: { status: string; message: string }[];
      }
    ).tasks;
    expect(t).toMatchObject({ status: "failure" });
    expect(t?.message).toMatch(/answered 404/);
    web.routes.set("/later.raw", { kind: "bytes", data: Buffer.from("now it is there") });
    await call("POST", `/v2/images/${id}/import`, {
      method: { name: "web-download", uri: `${web.url}/later.raw` },
    });
    expect((await settled(id)).status).toBe("active");
  });

  test("one import per image at a time: a second while the first runs is 409 with Glance's words", async () => {
    web.routes.set("/slow.raw", {
      kind: "slow",
      data: randomBytes(64 * 1024),
      pieceBytes: 4096,
      everyMs: 40,
    });
    const id = await newImage();
    await call("POST", `/v2/images/${id}/import`, {
      method: { name: "web-download", uri: `${web.url}/slow.raw` },
    });
    const img = await image(id);
    expect(img.status).toBe("importing");
    expect(typeof img.os_glance_import_task).toBe("string");
    expect(img.os_glance_importing_to_stores).toBe("local");
    const second = await call("POST", `/v2/images/${id}/import`, { method: { name: "glance-direct" } });
    expect(second.status).toBe(409);
    const upload = await fetch(`${s.url}/v2/images/${id}/file`, {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
      body: "x",
    });
    expect(upload.status).toBe(409);
    expect((await settled(id)).status).toBe("active");
  });

  test("a source that goes silent fails the task after the idle timeout; one sending without end hits the size cap", async () => {
    web.routes.set("/stall", { kind: "stall", first: Buffer.alloc(1000) });
    const id = await newImage();
    await call("POST", `/v2/images/${id}/import`, {
      method: { name: "web-download", uri: `${web.url}/stall` },
    });
    const img = await settled(id);
    expect(img.status).toBe("queued");
    const [t] = (
      (await (await call("GET", `/v2/images/${id}/tasks`)).json()) as { tasks: { message: string }[] }
    ).tasks;
    expect(t?.message).toMatch(/no data/);
  });
});

describe("copy-image", () => {
  test("copies an active image to another store, moving only what it lacks; all_stores when already everywhere is a no-op", async () => {
    const data = randomBytes(2 * MiB);
    const id = await newImage();
    expect(
      (
        await fetch(`${s.url}/v2/images/${id}/file`, {
          method: "PUT",
          headers: { "Content-Type": "application/octet-stream" },
          body: new Uint8Array(data),
        })
      ).status,
    ).toBe(204);
    const res = await call("POST", `/v2/images/${id}/import`, {
      method: { name: "copy-image" },
      stores: ["extra"],
    });
    expect(res.status).toBe(202);
    const done = await settled(id);
    expect(done).toMatchObject({ status: "active", stores: "local,extra", os_glance_failed_import: "" });
    const present = await call("POST", `/v2/images/${id}/import`, {
      method: { name: "copy-image" },
      stores: ["extra"],
    });
    expect(present.status).toBe(400);
    expect(((await present.json()) as { message: string }).message).toBe(
      "Image is already present at store 'extra'",
    );
    const all = await call("POST", `/v2/images/${id}/import`, {
      method: { name: "copy-image" },
      all_stores: true,
    });
    expect(all.status).toBe(202);
    const unknown = await call("POST", `/v2/images/${id}/import`, {
      method: { name: "copy-image" },
      stores: ["nope"],
    });
    expect(unknown.status).toBe(409);
    // The copy in extra is whole: remove local's, and download.
    expect((await call("DELETE", `/v2/stores/local/${id}`)).status).toBe(204);
    expect((await download(id)).equals(data)).toBe(true);
  });

  test("copy-image of an image that is not active is 409", async () => {
    const id = await newImage();
    const res = await call("POST", `/v2/images/${id}/import`, {
      method: { name: "copy-image" },
      stores: ["extra"],
    });
    expect(res.status).toBe(409);
  });
});

describe("copy-image with all_stores on a one-store server", () => {
  let one: TestServer;
  beforeAll(async () => {
    one = await startTestServer();
  });
  afterAll(async () => {
    await one?.close();
    if (one) await rm(one.dataDir, { recursive: true, force: true });
  });

  test("an image every store already holds is done at once: os_glance_importing_to_stores is there and empty right after the 202", async () => {
    const req = (method: string, path: string, body?: unknown) =>
      fetch(`${one.url}${path}`, {
        method,
        headers: json,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    const created = await req("POST", "/v2/images", {
      name: "one",
      disk_format: "raw",
      container_format: "bare",
    });
    const { id } = (await created.json()) as { id: string };
    const put = await fetch(`${one.url}/v2/images/${id}/file`, {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
      body: new Uint8Array(randomBytes(64 * 1024)),
    });
    expect(put.status).toBe(204);
    const res = await req("POST", `/v2/images/${id}/import`, {
      method: { name: "copy-image" },
      all_stores: true,
    });
    expect(res.status).toBe(202);
    const img = (await (await req("GET", `/v2/images/${id}`)).json()) as Record<string, unknown>;
    expect(img).toMatchObject({
      status: "active",
      os_glance_importing_to_stores: "",
      os_glance_failed_import: "",
    });
  });
});

describe("a target store that fails (an S3 server killed after the start)", () => {
  let t: TestServer;
  let s3: S3rver;
  beforeAll(async () => {
    s3 = await startS3rver();
    t = await startTestServer({
      stores: {
        local: { type: "filesystem" },
        extra: { type: "filesystem" },
        dead: { type: "s3", ...s3.options, attempts: 1 },
      },
      defaultStore: "local",
    });
    s3.kill();
  });
  afterAll(async () => {
    await t?.close();
    if (t) await rm(t.dataDir, { recursive: true, force: true });
    await s3?.stop();
  });
  const req = (method: string, path: string, body?: unknown) =>
    fetch(`${t.url}${path}`, {
      method,
      headers: json,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const settle = (id: string) =>
    waitFor(`image ${id} to settle`, async () => {
      const img = (await (await req("GET", `/v2/images/${id}`)).json()) as Record<string, unknown>;
      return img.status !== "importing" && !("os_glance_import_task" in img) && img;
    });
  const staged = async () => {
    const id = (
      (await (
        await req("POST", "/v2/images", { name: "f", disk_format: "raw", container_format: "bare" })
      ).json()) as { id: string }
    ).id;
    await fetch(`${t.url}/v2/images/${id}/stage`, {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
      body: new Uint8Array(randomBytes(300_000)),
    });
    return id;
  };

  test("all_stores_must_succeed false: active in the stores that worked, the dead one listed as failed", async () => {
    const id = await staged();
    await req("POST", `/v2/images/${id}/import`, {
      method: { name: "glance-direct" },
      stores: ["local", "dead", "extra"],
      all_stores_must_succeed: false,
    });
    const img = await settle(id);
    expect(img).toMatchObject({
      status: "active",
      stores: "local,extra",
      os_glance_failed_import: "dead",
      os_glance_importing_to_stores: "",
    });
    const [task] = (
      (await (await req("GET", `/v2/images/${id}/tasks`)).json()) as { tasks: { status: string }[] }
    ).tasks;
    expect(task?.status).toBe("success");
  });

  test("all_stores_must_succeed (the default): the import fails as a whole and the image is queued, holding nothing", async () => {
    const before = (await (await req("GET", "/tessera/v1/stats")).json()) as {
      stores: { store: string; objects: number }[];
    };
    const id = await staged();
    await req("POST", `/v2/images/${id}/import`, {
      method: { name: "glance-direct" },
      stores: ["local", "dead"],
    });
    const img = await settle(id);
    expect(img).toMatchObject({
      status: "queued",
      size: null,
      checksum: null,
      os_glance_failed_import: "dead",
    });
    const [task] = (
      (await (await req("GET", `/v2/images/${id}/tasks`)).json()) as { tasks: { status: string }[] }
    ).tasks;
    expect(task?.status).toBe("failure");
    const after = (await (await req("GET", "/tessera/v1/stats")).json()) as {
      stores: { store: string; objects: number }[];
    };
    expect(after.stores.find((x) => x.store === "local")?.objects).toBe(
      before.stores.find((x) => x.store === "local")?.objects,
    );
  });

  test("copy-image to a dead store fails its task; the image stays active where it was", async () => {
    const id = await staged();
    await req("POST", `/v2/images/${id}/import`, { method: { name: "glance-direct" } });
    await settle(id);
    await req("POST", `/v2/images/${id}/import`, { method: { name: "copy-image" }, stores: ["dead"] });
    const img = await settle(id);
    expect(img).toMatchObject({ status: "active", stores: "local", os_glance_failed_import: "dead" });
  });
});

/** An import task of `imageId` still processing, last touched `seconds` ago (a crash's leftover). */
function processingSince(seconds: number, id: string, imageId: string): TaskRecord {
  const at = new Date(Date.now() - seconds * 1000).toISOString();
  return { ...task(id, imageId, at), status: "processing", owner: null, updated_at: at, input: {} };
}

describe("the import lock", () => {
  test("a lock an hour stale, or held by a task that no longer exists, is broken as Glance breaks it", async () => {
    const cat = s.images.engine.catalog;
    const staleTask = processingSince(2 * 3600, "11111111-2222-3333-4444-555555555555", "");
    for (const holder of ["stale", "missing"]) {
      const id = await newImage();
      await stage(id, randomBytes(1000));
      await cat.transact(async (tx) => {
        const rec = (await tx.getImage(id)) as ImageRecord;
        if (holder === "stale") await tx.putTask({ ...staleTask, image_id: id });
        const lock = holder === "stale" ? staleTask.id : "99999999-0000-0000-0000-000000000000";
        await tx.putImage({ ...rec, properties: { ...rec.properties, os_glance_import_task: lock } }, rec);
      });
      const res = await call("POST", `/v2/images/${id}/import`, { method: { name: "glance-direct" } });
      expect(res.status, holder).toBe(202);
      expect((await settled(id)).status).toBe("active");
      if (holder === "stale") {
        const tasks = (await (await call("GET", `/v2/images/${id}/tasks`)).json()) as {
          tasks: { id: string; status: string; message: string }[];
        };
        expect(tasks.tasks.find((t) => t.id === staleTask.id)).toMatchObject({
          status: "failure",
          message: "Expired lock preempted",
        });
      }
    }
  });

  test("copy-image with all_stores on an image every store holds breaks a stale lock as it finishes, so the next import is not refused", async () => {
    const cat = s.images.engine.catalog;
    const id = await newImage();
    const put = await fetch(`${s.url}/v2/images/${id}/file`, {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
      body: new Uint8Array(randomBytes(64 * 1024)),
    });
    expect(put.status).toBe(204);
    await call("POST", `/v2/images/${id}/import`, { method: { name: "copy-image" }, stores: ["extra"] });
    expect((await settled(id)).stores).toBe("local,extra");
    const task = processingSince(2 * 3600, "22222222-3333-4444-5555-666666666666", id);
    await cat.transact(async (tx) => {
      const rec = (await tx.getImage(id)) as ImageRecord;
      await tx.putTask(task);
      await tx.putImage({ ...rec, properties: { ...rec.properties, os_glance_import_task: task.id } }, rec);
    });
    const all = { method: { name: "copy-image" }, all_stores: true };
    expect((await call("POST", `/v2/images/${id}/import`, all)).status).toBe(202);
    expect(await image(id)).not.toHaveProperty("os_glance_import_task");
    expect((await call("POST", `/v2/images/${id}/import`, all)).status).toBe(202);
  });
});
