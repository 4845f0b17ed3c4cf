/**
 * Whole-catalog copies (src/catalog/catalog-copy.ts) LMDB → PostgreSQL → LMDB on a real
 * PostgreSQL: a catalog with every kind of record (shared chunks in two stores, a chunk with a
 * sum past 2^63, condemned chunks, trashed packs and orphans, images with and without owners,
 * members, tasks, usage, metadefs namespaces and resource types) arrives whole and checked; the copy works (a condemned chunk revives
 * in it); a non-empty target and a source with a live lease are refused; a difference is found.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Catalog } from "../../src/catalog/catalog.js";
import {
  type CatalogCopy,
  type CatalogItem,
  CatalogNotEmptyError,
  LiveLeasesError,
} from "../../src/catalog/catalog-copy.js";
import { migrateCatalog } from "../../src/catalog/catalog-migrate.js";
import { CopyMismatchError, canon, checkCopy } from "../../src/catalog/copy-check.js";
import { LmdbCatalog } from "../../src/catalog/lmdb/lmdb-catalog.js";
import { PgCatalog } from "../../src/catalog/pg/pg-catalog.js";
import { CHUNK_FLAG_SUM } from "../../src/store/pack-format.js";
import { type Postgres, requirePostgres, startPostgres } from "../helpers/postgres.js";
import {
  collect,
  image,
  ingest,
  lookup,
  manifest,
  member,
  namespace,
  newChunk,
  newPack,
  packObject,
  packWrite,
  S1,
  S2,
  storeWrite,
  task,
  withLease,
} from "./catalog-fixtures.js";

const run = requirePostgres("whole-catalog copies to and from PostgreSQL");

type Copyable = Catalog & CatalogCopy;

/** Fills `cat` with every kind of record; returns the chunk it condemned. */
async function populate(cat: Catalog) {
  const [a, b, c, d] = [newChunk(), newChunk(), newChunk(), newChunk()];
  const m1 = manifest([a, b, null, c]);
  const m2 = manifest([b, c, d]);
  await cat.upgradeLayout(S1); // as an engine does at open: a catalog at the current layout
  await cat.transact((tx) => tx.setMeta("format", { chunker: "test", version: 1 }));
  const w1 = packWrite(m1.distinct);
  const la = w1.written.get(a.toString("hex"));
  if (la) Object.assign(la, { flags: CHUNK_FLAG_SUM, sum: 0xfedcba9876543210n });
  await ingest(cat, S1, m1, w1);
  const w2 = packWrite(m2.distinct);
  await ingest(cat, S1, m2, w2);
  await withLease(cat, (lease) =>
    cat.transact((tx) => tx.commitCopy(S2, m1.id, storeWrite(lease, packWrite(m1.distinct)))),
  );
  // m2 goes: d is unreferenced, GC condemns it and trashes m2's pack (only d was indexed there).
  await cat.transact((tx) => tx.releaseObject(S1, m2.id));
  await cat.transact(async (tx) => {
    await tx.condemn(S1, [d]);
    const countedAt = await tx.nextSeq();
    await tx.trashPacks(S1, [{ name: packObject(w2.pack), size: 4000 }], Date.now(), countedAt);
    await tx.trashOrphans(S2, [{ name: packObject(newPack()), size: 12 }], Date.now());
  });
  await cat.transact(async (tx) => {
    await tx.putImage(image("img-1", { object: m1.id.toString("hex"), stores: [S1, S2], size: m1.size }));
    await tx.putImage(image("img-2", { owner: null, name: null, status: "queued", size: null }));
    await tx.putImage(
      image("img-3", { owner: "beta", status: "uploading", staged: { object: "ab", store: S1, size: 7 } }),
    );
    await tx.putMember(member("img-1", "proj-x", "accepted"));
    await tx.putMember(member("img-1", "proj-y"));
    await tx.putMember(member("img-3", "proj-x", "rejected"));
    await tx.putTask(task("task-1", "img-3", "2024-03-01T00:00:00.000Z"));
    await tx.putTask(task("task-2", "img-1", "2024-03-02T00:00:00.000Z"));
    await tx.putNamespace(namespace("OS::Test::Copied"));
    await tx.putNamespace(namespace("CIM::Other", { visibility: "private", owner: "beta" }));
    await tx.putResourceType({
      name: "OS::Glance::Image",
      protected: true,
      created_at: "2024-04-01T00:00:00.000Z",
    });
  });
  return { d };
}

const exported = async (c: Copyable) => (await collect<CatalogItem>(c.exportAll())).map(canon);

describe.skipIf(!run)("whole-catalog copies", () => {
  let pg: Postgres;
  let work: string;
  const open: Catalog[] = [];
  const lmdb = (name: string) => {
    const c = new LmdbCatalog(join(work, name), { durable: false });
    open.push(c);
    return c;
  };
  const postgres = async () => {
    const c = await PgCatalog.open({ url: await pg.createDatabase() });
    open.push(c);
    return c;
  };

  beforeAll(async () => {
    pg = await startPostgres();
    work = await mkdtemp(join(tmpdir(), "tessera-catalog-copy-"));
  }, 60_000);
  afterAll(async () => {
    for (const c of open) await c.close().catch(() => {});
    await pg?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("copies every record LMDB → PostgreSQL → LMDB, checked, and the copies work", async () => {
    const first = lmdb("first");
    const { d } = await populate(first);
    const before = await first.countAll();
    expect(before).toMatchObject({
      chunk: 6,
      condemned: 1,
      trash: 2,
      image: 3,
      member: 3,
      task: 2,
      usage: 3,
      namespace: 2,
      resource_type: 1,
    });

    const onPg = await postgres();
    const there = await migrateCatalog(first, onPg, { source: "first", target: "pg" });
    expect(there.copied).toEqual(before);
    expect(there.check.viaInterface).toMatchObject({
      stores: [S1, S2],
      chunks: 6,
      images: 3,
      members: 3,
      namespaces: 2,
      resourceTypes: 1,
    });
    expect(there.check.itemsCompared).toBe(Object.values(before).reduce((n, k) => n + k, 0));

    const back = lmdb("back");
    await migrateCatalog(onPg, back, { source: "pg", target: "back" });
    expect(await exported(back)).toEqual(await exported(first));
    expect(await back.getMeta("layout")).toBe(3);
    expect(await back.records.ownerUsage(null)).toEqual(await first.records.ownerUsage(null));
    const sorted = await collect(back.records.scanImages("name", "asc"));
    expect(sorted.map((e) => e.id)).toEqual(["img-2", "img-1", "img-3"]);
    // A namespace's properties keep their order through PostgreSQL and back.
    const ns = await back.records.getNamespace("OS::Test::Copied");
    expect(Object.keys(ns?.properties ?? {})).toEqual(["zeta_long_name", "a", "mid"]);

    // The sequence moved with the data; a condemned chunk revives in the copy as in the source.
    expect(await onPg.transact((tx) => tx.nextSeq())).toBeGreaterThan(
      (await first.getMeta<number>("seq")) ?? 0,
    );
    await ingest(onPg, S1, manifest([d, null]), { written: new Map(), packs: [] });
    expect(await lookup(onPg, S1, d)).toMatchObject({ refs: 1 });
    expect(await collect(onPg.chunkIndex(S1).scanTrash())).toEqual([]);
  });

  it("refuses a target that is not empty, and a source with a live lease, before writing", async () => {
    const src = lmdb("src");
    await populate(src);
    const target = await postgres();
    await target.transact((tx) => tx.setMeta("format", { other: true }));
    await expect(migrateCatalog(src, target, { source: "s", target: "t" })).rejects.toThrow(
      CatalogNotEmptyError,
    );
    await expect(target.importAll(src.exportAll())).rejects.toThrow(CatalogNotEmptyError);
    expect(await target.countAll()).toMatchObject({ meta: 1, chunk: 0, image: 0 });

    const lease = await src.beginLease("an upload", 60_000);
    const fresh = await postgres();
    await expect(migrateCatalog(src, fresh, { source: "s", target: "t" })).rejects.toThrow(LiveLeasesError);
    expect(await fresh.isEmpty()).toBe(true);
    await src.endLease(lease.id);
  });

  it("finds a record that differs after the copy", async () => {
    const src = lmdb("diff");
    await populate(src);
    const target = await postgres();
    const { copied } = await migrateCatalog(src, target, { source: "s", target: "t" });
    await target.transact(async (tx) => {
      const prev = await tx.getImage("img-1");
      if (prev) await tx.putImage({ ...prev, name: "renamed" }, prev);
    });
    await expect(checkCopy(src, target, copied)).rejects.toThrow(CopyMismatchError);
    await expect(checkCopy(src, target, copied)).rejects.toThrow(/image img-1/);
  });
});
