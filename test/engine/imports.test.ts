/**
 * The import runner without HTTP: ended tasks past their expiry are removed, at start and, on a
 * long-running server, at most hourly when an import begins.
 */
import { afterEach, expect, it } from "vitest";
import { getTask, putTask, type TaskRecord } from "../../src/catalog/task-records.js";
import { ImageService } from "../../src/engine/images.js";
import { Imports } from "../../src/engine/imports.js";
import { pieces, tempEngine } from "../helpers/store.js";

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
  await cat.transaction(() => {
    putTask(cat, ended("11111111-1111-1111-1111-111111111111", past));
    putTask(cat, ended("22222222-2222-2222-2222-222222222222", future));
  });
  const imports = await Imports.open(svc);
  expect(getTask(cat, "11111111-1111-1111-1111-111111111111")).toBeUndefined();
  expect(getTask(cat, "22222222-2222-2222-2222-222222222222")).toBeDefined();

  // The server runs on; another task expires; an hour after the last prune, an import begins.
  await cat.transaction(() => putTask(cat, ended("33333333-3333-3333-3333-333333333333", past)));
  (imports as unknown as { lastPrune: number }).lastPrune = Date.now() - 2 * 3600 * 1000;
  const img = await svc.create({ disk_format: "raw", container_format: "bare" });
  await svc.stage(img.id, pieces(Buffer.alloc(1000, 1)));
  await imports.start(
    img.id,
    { method: "glance-direct", body: {} },
    { projectId: null, userId: null, roles: new Set(), requestId: null },
    undefined,
  );
  expect(getTask(cat, "33333333-3333-3333-3333-333333333333")).toBeUndefined();
  expect(getTask(cat, "22222222-2222-2222-2222-222222222222")).toBeDefined();
  await imports.close();
});
