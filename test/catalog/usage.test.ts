/**
 * Owners' usage (the quota tallies) kept by the catalog with every image change, and rebuilt
 * from the image records when a catalog of layout 2 is first opened.
 */
import { join } from "node:path";
import { open as openLmdb } from "lmdb";
import { afterEach, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { ImageService } from "../../src/images/images.js";
import { prng } from "../helpers/data.js";
import { pieces, tempEngine } from "../helpers/store.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it("tracks each owner's images, bytes and uploads through create, upload, owner change and delete", async () => {
  const t = await tempEngine();
  cleanups.push(t.cleanup);
  const svc = await ImageService.open(t.engine);
  const fields = { disk_format: "raw", container_format: "bare" };
  const a = await svc.create({ ...fields, owner: "alpha" });
  const b = await svc.create({ ...fields, owner: "alpha" });
  await svc.create({ ...fields, owner: "beta" });
  await svc.upload(a.id, pieces(prng(1, 100_000)));
  await svc.upload(b.id, pieces(prng(1, 100_000)));
  expect(await t.engine.catalog.records.ownerUsage("alpha")).toEqual({
    images: 2,
    bytes: 200_000,
    uploading: 0,
    staged: 0,
  });
  await svc.update(b.id, (r) => ({ ...r, owner: "beta" }));
  expect(await t.engine.catalog.records.ownerUsage("alpha")).toEqual({
    images: 1,
    bytes: 100_000,
    uploading: 0,
    staged: 0,
  });
  expect(await t.engine.catalog.records.ownerUsage("beta")).toEqual({
    images: 2,
    bytes: 100_000,
    uploading: 0,
    staged: 0,
  });
  await svc.remove(a.id);
  expect(await t.engine.catalog.records.ownerUsage("alpha")).toEqual({
    images: 0,
    bytes: 0,
    uploading: 0,
    staged: 0,
  });
});

it("a catalog of layout 2 gets its tallies computed from the image records on first open", async () => {
  const t = await tempEngine();
  cleanups.push(t.cleanup);
  {
    const svc = await ImageService.open(t.engine);
    const img = await svc.create({ disk_format: "raw", container_format: "bare", owner: "alpha" });
    await svc.upload(img.id, pieces(prng(2, 300_000)));
    await svc.create({ owner: "alpha" });
    await t.engine.close();
  }
  const root = openLmdb({ path: join(t.dir, "catalog"), maxDbs: 256 });
  const usage = root.openDB({ name: "usage", encoding: "json" });
  const meta = root.openDB({ name: "meta", encoding: "json" });
  await root.transaction(() => {
    usage.clearSync();
    meta.putSync("layout", 2);
  });
  await root.close();
  const e = await Engine.openDir(t.dir, { durable: false, packSize: 1024 * 1024 });
  cleanups.push(() => e.close());
  expect(await e.catalog.records.ownerUsage("alpha")).toEqual({
    images: 2,
    bytes: 300_000,
    uploading: 0,
    staged: 0,
  });
  expect(await e.catalog.getMeta("layout")).toBe(3);
});
