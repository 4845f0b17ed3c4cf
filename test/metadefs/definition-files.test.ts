/**
 * Definition files without a server: namespaces whose names read alike export to files of
 * their own and load back as they were; a file with a nameless object, or a name too long for
 * Glance's columns, stops the load before anything is written.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LmdbCatalog } from "../../src/catalog/lmdb/lmdb-catalog.js";
import {
  DefinitionFileError,
  exportDefinitions,
  loadDefinitions,
  unloadDefinitions,
} from "../../src/metadefs/definition-files.js";

let work: string;
let catalog: LmdbCatalog;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), "tessera-defs-"));
  catalog = new LmdbCatalog(join(work, "catalog"), { durable: false });
});
afterEach(async () => {
  await catalog.close();
  await rm(work, { recursive: true, force: true });
});

describe("definition files", () => {
  it("exports namespaces whose names read alike to files of their own, and loads them back", async () => {
    const src = join(work, "src");
    await mkdir(src);
    const names = ["X::Y", "X:Y", "X__Y", "名前", "名字"];
    for (const [i, n] of names.entries()) {
      await writeFile(join(src, `${i}.json`), JSON.stringify({ namespace: n, tags: [{ name: `t${i}` }] }));
    }
    expect((await loadDefinitions(catalog, src)).loaded).toHaveLength(5);
    const out = join(work, "out");
    expect(await exportDefinitions(catalog, out)).toHaveLength(5);
    expect(await readdir(out)).toHaveLength(5);
    expect(await unloadDefinitions(catalog)).toEqual({ namespaces: 5, resourceTypes: 0 });
    expect((await loadDefinitions(catalog, out)).loaded.sort()).toEqual([...names].sort());
    expect((await catalog.records.getNamespace("X:Y"))?.tags.map((t) => t.name)).toEqual(["t1"]);
  });

  it("refuses a file with a nameless object or an overlong resource type, writing nothing", async () => {
    for (const doc of [
      { namespace: "A::B", objects: [{ description: "no name" }] },
      { namespace: "A::C", resource_type_associations: [{ name: "x".repeat(81) }] },
    ]) {
      const dir = await mkdtemp(join(work, "bad-"));
      await writeFile(join(dir, "a-good.json"), JSON.stringify({ namespace: "Good::One" }));
      await writeFile(join(dir, "b-bad.json"), JSON.stringify(doc));
      await expect(loadDefinitions(catalog, dir)).rejects.toThrow(DefinitionFileError);
      expect(await catalog.records.listNamespaces()).toEqual([]);
    }
  });
});
