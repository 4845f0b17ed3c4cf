/**
 * The import runner without HTTP: ended tasks past their expiry are removed, at start and, on a
 * long-running server, at most hourly when an import begins.
 */
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import type { TaskRecord } from "../../src/catalog/task-records.js";
import { Engine } from "../../src/engine/engine.js";
import { ImageService } from "../../src/images/images.js";
import { Imports } from "../../src/images/imports.js";
import { prng } from "../helpers/data.js";
import { collect, pieces, tempEngine } from "../helpers/store.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function ended(id: string, expiresAt: Date): TaskRecord {
  const at = new Date(expiresAt.getTime() - 48 * 3600 * 1000).toISOString();
  return {
    id,
    type: "api_image_import",
    status: "success",
    owner: null,
    image_id: "gone",
    user_id: null,
    request_id: null,
    input: {},
    result: null,
    message: "",
    created_at: at,
    updated_at: at,
    expires_at: expiresAt.toISOString(),
  };
}

it("removes expired tasks at start, and at an import's start once an hour has passed; keeps the others", async () => {
  const t = await tempEngine();
  cleanups.push(t.cleanup);
  const cat = t.engine.catalog;
  const svc = await ImageService.open(t.engine);
  const past = new Date(Date.now() - 1000);
  const future = new Date(Date.now() + 3600 * 1000);
  await cat.transact(async (tx) => {
    await tx.putTask(ended("11111111-1111-1111-1111-111111111111", past));
    await tx.putTask(ended("22222222-2222-2222-2222-222222222222", future));
  });
  const imports = await Imports.open(svc);
  expect(await cat.records.getTask("11111111-1111-1111-1111-111111111111")).toBeUndefined();
  expect(await cat.records.getTask("22222222-2222-2222-2222-222222222222")).toBeDefined();

  // The server runs on; another task expires; an hour after the last prune, an import begins.
  await cat.transact(async (tx) => tx.putTask(ended("33333333-3333-3333-3333-333333333333", past)));
  (imports as unknown as { lastPrune: number }).lastPrune = Date.now() - 2 * 3600 * 1000;
  const img = await svc.create({ disk_format: "raw", container_format: "bare" });
  await svc.stage(img.id, pieces(Buffer.alloc(1000, 1)));
  await imports.start(
    img.id,
    { method: "glance-direct", body: {} },
    { projectId: null, userId: null, roles: new Set(), requestId: null },
    undefined,
  );
  expect(await cat.records.getTask("33333333-3333-3333-3333-333333333333")).toBeUndefined();
  expect(await cat.records.getTask("22222222-2222-2222-2222-222222222222")).toBeDefined();
  await imports.close();
});

/** An image service over two filesystem stores, local (the default) and extra. */
async function twoStores(): Promise<{ engine: Engine; svc: ImageService }> {
  const first = await tempEngine();
  cleanups.push(first.cleanup);
  const dir = first.dir;
  await first.engine.close();
  const stores = {
    local: { type: "filesystem" as const, path: join(dir, "objects") },
    extra: { type: "filesystem" as const, path: join(dir, "extra") },
  };
  const engine = await Engine.openDir(dir, {
    durable: false,
    packSize: 1024 * 1024,
    stores,
    defaultStore: "local",
  });
  cleanups.push(() => engine.close().catch(() => {}));
  const svc = await ImageService.open(engine);
  return { engine, svc };
}

/** Starts a glance-direct import of the staged image into both stores. */
async function importIntoBoth(svc: ImageService, id: string, node?: string): Promise<void> {
  const imports = await Imports.open(svc, { node });
  await imports.start(
    id,
    { method: "glance-direct", stores: ["local", "extra"], body: {} },
    { projectId: null, userId: null, roles: new Set(), requestId: null },
    undefined,
  );
}

it("a restart after an import into two stores was cut off past activation keeps the image active in the store it reached", async () => {
  const { engine, svc } = await twoStores();
  // The copy to the second store never ends: the process "dies" there.
  let copying!: () => void;
  const copyStarted = new Promise<void>((r) => {
    copying = r;
  });
  let die!: (e: Error) => void;
  svc.copyToStore = () => {
    copying();
    return new Promise((_, reject) => {
      die = reject;
    });
  };
  const data = Buffer.from(prng(7, 3 * 1024 * 1024));
  const img = await svc.create({ disk_format: "raw", container_format: "bare" });
  await svc.stage(img.id, pieces(data));
  await importIntoBoth(svc, img.id);
  await copyStarted;
  expect((await svc.get(img.id)).status).toBe("active");

  // The restart: a new runner over the same catalog finds the task still processing.
  await Imports.open(svc);
  const after = await svc.get(img.id);
  expect(after).toMatchObject({ status: "active", stores: ["local"], size: data.length });
  expect(after.properties).toMatchObject({
    os_glance_failed_import: "extra",
    os_glance_importing_to_stores: "",
  });
  expect(after.properties).not.toHaveProperty("os_glance_import_task");
  expect((await collect(engine.read(after.object as string))).equals(data)).toBe(true);
  die(new Error("the test is over")); // the first runner's import ends, as the process would have
});

it("on a shared catalog a node starting leaves another node's import running; only that node, restarting, fails it", async () => {
  const { svc } = await twoStores();
  let die!: (e: Error) => void;
  let copying!: () => void;
  const copyStarted = new Promise<void>((r) => {
    copying = r;
  });
  svc.copyToStore = () => {
    copying();
    return new Promise((_, reject) => {
      die = reject;
    });
  };
  const img = await svc.create({ disk_format: "raw", container_format: "bare" });
  await svc.stage(img.id, pieces(Buffer.from(prng(9, 1024 * 1024))));
  await importIntoBoth(svc, img.id, "host-a:/srv/a");
  await copyStarted;
  const task = (await svc.engine.catalog.records.tasksOfImage(img.id))[0] as TaskRecord;
  expect(task).toMatchObject({ status: "processing", node: "host-a:/srv/a" });

  await Imports.open(svc, { node: "host-b:/srv/b" }); // another node starts: the import runs on
  expect(await svc.engine.catalog.records.getTask(task.id)).toMatchObject({ status: "processing" });
  expect((await svc.get(img.id)).properties).toHaveProperty("os_glance_import_task", task.id);

  await Imports.open(svc, { node: "host-a:/srv/a" }); // its own node restarts: it was cut off
  expect(await svc.engine.catalog.records.getTask(task.id)).toMatchObject({ status: "failure" });
  expect((await svc.get(img.id)).properties).not.toHaveProperty("os_glance_import_task");
  die(new Error("the test is over"));
});

it("a restart after a copy committed but before its bookkeeping lists no store the image is in as failed", async () => {
  const { svc } = await twoStores();
  // The copy commits, then the process "dies" before the import records it.
  const copy = svc.copyToStore.bind(svc);
  let copied!: () => void;
  const done = new Promise<void>((r) => {
    copied = r;
  });
  let die!: (e: Error) => void;
  svc.copyToStore = async (id, store) => {
    await copy(id, store);
    copied();
    return new Promise((_, reject) => {
      die = reject;
    });
  };
  const img = await svc.create({ disk_format: "raw", container_format: "bare" });
  await svc.stage(img.id, pieces(Buffer.from(prng(8, 2 * 1024 * 1024))));
  await importIntoBoth(svc, img.id);
  await done;
  await Imports.open(svc);
  const after = await svc.get(img.id);
  expect(after).toMatchObject({ status: "active", stores: ["local", "extra"] });
  expect(after.properties).toMatchObject({ os_glance_failed_import: "", os_glance_importing_to_stores: "" });
  die(new Error("the test is over"));
});
