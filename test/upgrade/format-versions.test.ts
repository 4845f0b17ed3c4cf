/**
 * The upgrade policy's guards on an embedded data directory (docs/operations.md, "Upgrading"):
 * what a newer Tessera wrote (a catalog layout, a store format, pack or manifest version this
 * code does not know) is refused with a message saying to upgrade, and left as it was; a
 * catalog of an older layout is migrated at open only after a copy of it, as it was, is kept
 * beside it.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { open as openLmdb } from "lmdb";
import { afterEach, describe, expect, it } from "vitest";
import { LmdbCatalog } from "../../src/catalog/lmdb/lmdb-catalog.js";
import { Engine } from "../../src/engine/engine.js";
import { CatalogVersionError, StoreFormatError } from "../../src/errors.js";
import { ImageService } from "../../src/images/images.js";
import { prng } from "../helpers/data.js";
import { collect, pieces, tempEngine } from "../helpers/store.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A data directory with one object in it, closed; its directory and the object's id. */
async function writtenDir() {
  const t = await tempEngine();
  cleanups.push(t.cleanup);
  const r = await t.engine.ingest(pieces(prng(31, 300_000)));
  await t.engine.close();
  return { dir: t.dir, id: r.manifestId };
}

/** Sets meta `key` of the catalog in `dir` by hand, as another release would have written it. */
async function setMeta(dir: string, key: string, value: unknown): Promise<void> {
  const root = openLmdb({ path: join(dir, "catalog"), maxDbs: 256 });
  const meta = root.openDB({ name: "meta", encoding: "json" });
  await meta.put(key, value);
  await root.close();
}

async function getMeta(path: string, key: string): Promise<unknown> {
  const root = openLmdb({ path, maxDbs: 256 });
  const v = root.openDB({ name: "meta", encoding: "json" }).get(key);
  await root.close();
  return v;
}

describe("what a newer Tessera wrote is refused, changing nothing", () => {
  it("an LMDB catalog of a newer layout", async () => {
    const { dir } = await writtenDir();
    await setMeta(dir, "layout", 4);
    const opening = Engine.openDir(dir, { durable: false });
    await expect(opening).rejects.toBeInstanceOf(CatalogVersionError);
    await expect(opening).rejects.toThrow(/layout 4, newer than this Tessera's 3: .*upgrade Tessera/);
    expect(() => new LmdbCatalog(join(dir, "catalog"))).toThrow(CatalogVersionError);
    expect(await getMeta(join(dir, "catalog"), "layout")).toBe(4);
  });

  for (const [field, value] of [
    ["packVersion", 3],
    ["manifestVersion", 2],
    ["formatVersion", 2],
  ] as const) {
    it(`a store format record with a newer ${field}`, async () => {
      const { dir } = await writtenDir();
      const file = join(dir, "objects", "tessera-store.json");
      const record = { ...JSON.parse(await readFile(file, "utf8")), [field]: value };
      await writeFile(file, JSON.stringify(record));
      const opening = Engine.openDir(dir, { durable: false });
      await expect(opening).rejects.toBeInstanceOf(StoreFormatError);
      await expect(opening).rejects.toThrow(/the store was written by a newer Tessera .*: upgrade Tessera/);
      expect(JSON.parse(await readFile(file, "utf8"))).toEqual(record);
    });
  }

  it("a catalog's format record with a newer pack version, the store's being ours", async () => {
    const { dir } = await writtenDir();
    const format = (await getMeta(join(dir, "catalog"), "format")) as Record<string, unknown>;
    await setMeta(dir, "format", { ...format, packVersion: 3 });
    await expect(Engine.openDir(dir, { durable: false })).rejects.toThrow(
      /the catalog was written by a newer Tessera .*: upgrade Tessera/,
    );
  });
});

describe("a catalog of an older layout", () => {
  it("is copied aside as it was before it is migrated at open, and serves after", async () => {
    const t = await tempEngine();
    cleanups.push(t.cleanup);
    const svc = await ImageService.open(t.engine);
    const img = await svc.create({ disk_format: "raw", container_format: "bare", owner: "alpha" });
    const bytes = Buffer.from(prng(32, 300_000));
    await svc.upload(img.id, pieces(bytes));
    await t.engine.close();
    await setMeta(t.dir, "layout", 2);

    const e = await Engine.openDir(t.dir, { durable: false });
    cleanups.push(() => e.close());
    expect(await e.catalog.getMeta("layout")).toBe(3);
    const kept = join(t.dir, "catalog-before-layout-3");
    expect(await getMeta(kept, "layout")).toBe(2);
    const rec = await e.catalog.records.getImage(img.id);
    expect(rec?.status).toBe("active");
    expect((await collect(e.read(Buffer.from(rec?.object as string, "hex")))).equals(bytes)).toBe(true);
  });
});
