/**
 * The catalog contract, part four (run by runCatalogConformance): the image service's records
 * (images with their sort indexes and owners' usage, members, tasks), and units of work run
 * concurrently.
 */
import { describe, expect, it } from "vitest";
import type { Catalog } from "../../src/catalog/catalog.js";
import {
  type ImageRecord,
  type ImageSortKey,
  type IndexValue,
  indexValue,
} from "../../src/catalog/image-records.js";
import {
  type CatalogFactory,
  collect,
  freshCatalog,
  image,
  ingestCommit,
  lookup,
  manifest,
  member,
  newChunk,
  packWrite,
  S1,
  task,
} from "./catalog-fixtures.js";

const ZERO = { images: 0, bytes: 0, uploading: 0, staged: 0 };

async function scan(cat: Catalog, key: ImageSortKey, dir: "asc" | "desc", from?: IndexValue) {
  return collect(cat.records.scanImages(key, dir, from));
}

export function runCatalogRecordsConformance(name: string, make: CatalogFactory): void {
  describe(`catalog conformance: ${name}: image records`, () => {
    const catalog = freshCatalog(make);

    it("putImage stores a record that getImage returns as written", async () => {
      const cat = catalog();
      const rec = image("img-1", {
        name: "ubuntu",
        tags: ["a", "b"],
        properties: { os_distro: "ubuntu" },
        staged: { object: "ab".repeat(32), store: S1, size: 5 },
      });
      await cat.transact((tx) => tx.putImage(rec));
      expect(await cat.records.getImage("img-1")).toEqual(rec);
      expect(await cat.records.getImage("img-2")).toBeUndefined();
    });

    it("getImages answers a batch in order, undefined for unknown ids, inside and outside a unit of work", async () => {
      const cat = catalog();
      const a = image("img-a", { name: "a" });
      const b = image("img-b", { name: "b" });
      await cat.transact(async (tx) => {
        await tx.putImage(a);
        await tx.putImage(b);
      });
      expect(await cat.records.getImages(["img-b", "nope", "img-a"])).toEqual([b, undefined, a]);
      expect(await cat.transact((tx) => tx.getImages(["img-a", "img-b"]))).toEqual([a, b]);
      expect(await cat.records.getImages([])).toEqual([]);
    });

    it("scanImages walks a sort index ascending with nulls first and ties by id, descending in exact reverse, from a value inclusive", async () => {
      const cat = catalog();
      const recs = [
        image("img-4", { name: "b", size: 30 }),
        image("img-2", { name: null, size: null }),
        image("img-3", { name: "a", size: 10 }),
        image("img-1", { name: "b", size: 20 }),
        image("img-5", { name: "c", size: 10 }),
      ];
      await cat.transact(async (tx) => {
        for (const r of recs) await tx.putImage(r);
      });
      const byId = new Map(recs.map((r) => [r.id, r]));
      const entry = (key: ImageSortKey) => (id: string) => ({
        value: indexValue(byId.get(id) as ImageRecord, key),
        id,
      });
      const asc = ["img-2", "img-3", "img-1", "img-4", "img-5"];
      expect(await scan(cat, "name", "asc")).toEqual(asc.map(entry("name")));
      expect(await scan(cat, "name", "desc")).toEqual([...asc].reverse().map(entry("name")));
      expect(await scan(cat, "name", "asc", "b")).toEqual(["img-1", "img-4", "img-5"].map(entry("name")));
      expect(await scan(cat, "name", "desc", "b")).toEqual(
        ["img-4", "img-1", "img-3", "img-2"].map(entry("name")),
      );
      expect(await scan(cat, "name", "asc", "aa")).toEqual(["img-1", "img-4", "img-5"].map(entry("name")));
      expect(await scan(cat, "name", "desc", "aa")).toEqual(["img-3", "img-2"].map(entry("name")));
      expect(await scan(cat, "name", "asc", indexValue(byId.get("img-2") as ImageRecord, "name"))).toEqual(
        asc.map(entry("name")),
      );
      const bySize = ["img-2", "img-3", "img-5", "img-1", "img-4"];
      expect(await scan(cat, "size", "asc")).toEqual(bySize.map(entry("size")));
      expect(await scan(cat, "size", "desc", 20)).toEqual(
        ["img-1", "img-5", "img-3", "img-2"].map(entry("size")),
      );
      expect((await scan(cat, "id", "asc")).map((e) => e.id)).toEqual([
        "img-1",
        "img-2",
        "img-3",
        "img-4",
        "img-5",
      ]);
    });

    it("putImage with prev moves the record's index entries: the old values no longer list it", async () => {
      const cat = catalog();
      const rec = image("img-1", { name: "old", status: "queued", size: null });
      const other = image("img-2", { name: "zzz", status: "active" });
      await cat.transact(async (tx) => {
        await tx.putImage(rec);
        await tx.putImage(other);
      });
      const next = { ...rec, name: "new", status: "active" as const, size: 42 };
      await cat.transact((tx) => tx.putImage(next, rec));
      expect(await scan(cat, "name", "asc")).toEqual([
        { value: "new", id: "img-1" },
        { value: "zzz", id: "img-2" },
      ]);
      expect(await scan(cat, "status", "asc")).toEqual([
        { value: "active", id: "img-1" },
        { value: "active", id: "img-2" },
      ]);
      expect((await scan(cat, "size", "asc")).map((e) => e.value)).toEqual([42, 100]);
      expect(await cat.records.getImage("img-1")).toEqual(next);
    });

    it("removeImage removes the record, its index entries and its members, and no other image's", async () => {
      const cat = catalog();
      const [one, ten] = [image("img-1"), image("img-10")];
      await cat.transact(async (tx) => {
        await tx.putImage(one);
        await tx.putImage(ten);
        for (const p of ["p1", "p2"]) await tx.putMember(member("img-1", p));
        await tx.putMember(member("img-10", "p1"));
      });
      await cat.transact((tx) => tx.removeImage(one));
      expect(await cat.records.getImage("img-1")).toBeUndefined();
      expect(await cat.records.listMembers("img-1")).toEqual([]);
      expect(await cat.records.countMembers("img-1")).toBe(0);
      expect(await cat.records.getMember("img-1", "p1")).toBeUndefined();
      expect(await cat.records.listMembers("img-10")).toEqual([member("img-10", "p1")]);
      for (const key of ["name", "id", "created_at", "status"] as const) {
        expect((await scan(cat, key, "asc")).map((e) => e.id)).toEqual(["img-10"]);
      }
    });

    it("ownerUsage tallies images, bytes, uploading statuses and staged bytes, moving with updates, owner changes and removals", async () => {
      const cat = catalog();
      const done = image("img-1", { owner: "alpha", size: 100 });
      const saving = image("img-2", {
        owner: "alpha",
        status: "saving",
        size: null,
        staged: { object: "cd".repeat(32), store: S1, size: 50 },
      });
      const importing = image("img-3", { owner: null, status: "importing", size: 7 });
      await cat.transact(async (tx) => {
        for (const r of [done, saving, importing]) await tx.putImage(r);
      });
      expect(await cat.records.ownerUsage("alpha")).toEqual({
        images: 2,
        bytes: 100,
        uploading: 1,
        staged: 50,
      });
      expect(await cat.records.ownerUsage(null)).toEqual({ images: 1, bytes: 7, uploading: 1, staged: 0 });
      expect(await cat.records.ownerUsage("nobody")).toEqual(ZERO);

      const active = { ...saving, status: "active" as const, size: 70, staged: null };
      await cat.transact((tx) => tx.putImage(active, saving));
      expect(await cat.records.ownerUsage("alpha")).toEqual({
        images: 2,
        bytes: 170,
        uploading: 0,
        staged: 0,
      });

      const moved = { ...active, owner: "beta" };
      await cat.transact((tx) => tx.putImage(moved, active));
      expect(await cat.records.ownerUsage("alpha")).toEqual({
        images: 1,
        bytes: 100,
        uploading: 0,
        staged: 0,
      });
      expect(await cat.records.ownerUsage("beta")).toEqual({ images: 1, bytes: 70, uploading: 0, staged: 0 });

      await cat.transact(async (tx) => {
        await tx.removeImage(done);
        await tx.removeImage(moved);
        await tx.removeImage(importing);
      });
      for (const owner of ["alpha", "beta", null]) expect(await cat.records.ownerUsage(owner)).toEqual(ZERO);
    });

    it("members: getMember, listMembers by project, countMembers and removeMember, per image", async () => {
      const cat = catalog();
      await cat.transact(async (tx) => {
        for (const p of ["p3", "p1", "p2"]) await tx.putMember(member("img-1", p));
        await tx.putMember(member("img-10", "p0"));
        await tx.putMember(member("img-1", "p2", "accepted"));
      });
      expect(await cat.records.getMember("img-1", "p2")).toEqual(member("img-1", "p2", "accepted"));
      expect(await cat.records.getMember("img-1", "p0")).toBeUndefined();
      expect((await cat.records.listMembers("img-1")).map((m) => m.member_id)).toEqual(["p1", "p2", "p3"]);
      expect(await cat.records.countMembers("img-1")).toBe(3);
      expect(await cat.records.countMembers("img-10")).toBe(1);
      await cat.transact((tx) => tx.removeMember("img-1", "p2"));
      expect(await cat.records.listMembers("img-1")).toEqual([member("img-1", "p1"), member("img-1", "p3")]);
      expect(await cat.records.countMembers("img-1")).toBe(2);
      expect(await cat.records.getMember("img-1", "p2")).toBeUndefined();
    });

    it("tasks: getTask, listTasks and tasksOfImage newest first (ties by id, descending), removeTask", async () => {
      const cat = catalog();
      const tasks = [
        task("t-a", "img-1", "2024-01-01T00:00:00.000Z"),
        task("t-b", "img-1", "2024-01-03T00:00:00.000Z"),
        task("t-c", "img-2", "2024-01-02T00:00:00.000Z"),
        task("t-d", "img-1", "2024-01-03T00:00:00.000Z"),
      ];
      await cat.transact(async (tx) => {
        for (const t of tasks) await tx.putTask(t);
      });
      expect(await cat.records.getTask("t-c")).toEqual(tasks[2]);
      expect(await cat.records.getTask("t-x")).toBeUndefined();
      expect((await cat.records.listTasks()).map((t) => t.id)).toEqual(["t-d", "t-b", "t-c", "t-a"]);
      expect((await cat.records.tasksOfImage("img-1")).map((t) => t.id)).toEqual(["t-d", "t-b", "t-a"]);
      expect(await cat.records.tasksOfImage("img-2")).toEqual([tasks[2]]);
      await cat.transact((tx) => tx.removeTask(tasks[1] as (typeof tasks)[1]));
      expect(await cat.records.getTask("t-b")).toBeUndefined();
      expect((await cat.records.listTasks()).map((t) => t.id)).toEqual(["t-d", "t-c", "t-a"]);
      expect((await cat.records.tasksOfImage("img-1")).map((t) => t.id)).toEqual(["t-d", "t-a"]);
    });
  });

  describe(`catalog conformance: ${name}: concurrent units of work`, () => {
    const catalog = freshCatalog(make);

    it("units of work started at once are serializable: each increments a counter read inside it, none lost", async () => {
      const cat = catalog();
      const n = 25;
      const results = await Promise.all(
        Array.from({ length: n }, () =>
          cat.transact(async (tx) => {
            const v = (await tx.getMeta<number>("counter")) ?? 0;
            await tx.getMeta("elsewhere");
            await tx.getImage("nothing");
            await tx.setMeta("counter", v + 1);
            return v + 1;
          }),
        ),
      );
      expect(results.sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      expect(await cat.getMeta("counter")).toBe(n);
    });

    it("reads outside a unit of work running concurrently never see the writes of one that then throws", async () => {
      const cat = catalog();
      const rec = image("img-ghost");
      const m = manifest([newChunk()]);
      const lease = await cat.beginLease("ghost write", 60_000);
      const boom = new Error("abandoned");
      let settled = false;
      const seen: string[] = [];
      const poll = async () => {
        do {
          if (await cat.records.getImage(rec.id)) seen.push("image");
          if ((await cat.records.ownerUsage("ghost")).images > 0) seen.push("usage");
          if (await cat.getObject(m.id)) seen.push("object");
          if (await lookup(cat, S1, m.distinct[0] as Buffer)) seen.push("chunk");
          if (await cat.getMeta("ghost")) seen.push("meta");
          await new Promise((r) => setImmediate(r));
        } while (!settled);
      };
      const unit = cat
        .transact(async (tx) => {
          await tx.putImage({ ...rec, owner: "ghost" });
          await tx.setMeta("ghost", true);
          await tx.commitIngest(S1, ingestCommit(m, lease.id, packWrite(m.distinct)));
          for (let i = 0; i < 10; i++) await tx.getMeta("ghost");
          throw boom;
        })
        .finally(() => {
          settled = true;
        });
      const pollers = [poll(), poll(), poll(), poll()];
      await expect(unit).rejects.toBe(boom);
      await Promise.all(pollers);
      await poll();
      expect(seen).toEqual([]);
    });
  });
}
