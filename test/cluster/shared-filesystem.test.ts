/**
 * Three `tessera serve` nodes on one PostgreSQL catalog and one filesystem store in a shared
 * directory (as an NFS mount would be), behind HAProxy (test/cluster/cluster.ts, store
 * "filesystem"): pack names never collide between nodes, racing writes of the same bytes cost
 * only garbage a collection reclaims, and a collection with no grace amid uploads on the other
 * nodes loses nothing. What the shared directory holds is compared with the catalog's own
 * tables, read straight from PostgreSQL.
 */
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prng } from "../helpers/data.js";
import { haveHaproxy } from "../helpers/haproxy.js";
import { havePostgres } from "../helpers/postgres.js";
import {
  as,
  type Cluster,
  collect,
  createImage,
  downloadMd5,
  type GcStoreReport,
  gatedUpload,
  getJson,
  listAll,
  md5,
  startTesseraCluster,
  tessera,
  upload,
} from "./cluster.js";

const MiB = 1024 * 1024;
const STORE = "central";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function requireParts(): boolean {
  const missing = [...(havePostgres() ? [] : ["postgresql"]), ...(haveHaproxy() ? [] : ["haproxy"])];
  if (missing.length === 0) return true;
  if (process.env.CI) throw new Error(`CI must have ${missing.join(", ")} for the shared filesystem test`);
  console.warn(`skipping the shared filesystem test: missing ${missing.join(", ")}`);
  return false;
}

/** Pack files (id → size) under the shared directory, and any temporary file left anywhere in it. */
async function onDisk(root: string): Promise<{ packs: Map<string, number>; temps: string[] }> {
  const packs = new Map<string, number>();
  const temps: string[] = [];
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const path = join(e.parentPath, e.name);
    if (e.name.startsWith(".tmp-")) temps.push(path);
    const id = /^([0-9a-f]{32})\.pack$/.exec(e.name)?.[1];
    // A pack a collection deletes between the listing and the stat is simply not there.
    const s = id ? await stat(path).catch(() => undefined) : undefined;
    if (id && s) packs.set(id, s.size);
  }
  return { packs, temps };
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
const added = (now: Map<string, number>, before: Map<string, number>) =>
  new Map([...now].filter(([id]) => !before.has(id)));

describe.skipIf(!requireParts())("a Tessera cluster on one filesystem store in a shared directory", () => {
  let c: Cluster;
  let root: string;
  let db: pg.Client;
  const node = (i: number) => c.nodes[i - 1].url;
  const lb = () => c.haproxy.url;
  const nextNode = (i: number) => node((i % 3) + 1);
  /** Every image that should be whole at the end, and its md5. */
  const expected = new Map<string, string>();

  /** The packs the catalog records in the store (id → size). */
  const catalogPacks = async () => {
    const r = await db.query<{ id: string; size: string }>(
      "SELECT encode(id, 'hex') AS id, size FROM packs WHERE store = $1",
      [STORE],
    );
    return new Map(r.rows.map((x) => [x.id, Number(x.size)]));
  };
  /** The packs some indexed chunk of the store is in. */
  const indexedPacks = async () => {
    const r = await db.query<{ id: string }>(
      "SELECT DISTINCT encode(pack, 'hex') AS id FROM chunks WHERE store = $1",
      [STORE],
    );
    return new Set(r.rows.map((x) => x.id));
  };
  const trashed = async () =>
    Number((await db.query("SELECT count(*) AS n FROM trash WHERE store = $1", [STORE])).rows[0].n);
  const storedBytes = async () =>
    (await getJson<{ total: { storedBytes: number } }>("admin", node(1), "/tessera/v1/stats")).total
      .storedBytes;
  /** `tessera fsck` beside the nodes: every indexed chunk read back and checked against its id. */
  const fsck = async () => {
    // Its data directory check wants an LMDB file; the catalog it opens is PostgreSQL's.
    await mkdir(join(c.work, "fsck", "catalog"), { recursive: true });
    await writeFile(join(c.work, "fsck", "catalog", "data.mdb"), "");
    const r = await tessera("fsck", "--data", join(c.work, "fsck"), "--config", c.configFile);
    expect(r.status, r.err).toBe(0);
    return (JSON.parse(r.out) as { stores: Record<string, unknown>[] }).stores[0];
  };
  const clean = { badChunks: 0, missingChunks: 0, missingPacks: 0, damagedObjects: [] };

  beforeAll(async () => {
    c = await startTesseraCluster({ store: "filesystem" });
    const config = JSON.parse(await readFile(c.configFile, "utf8"));
    root = config.stores[STORE].path;
    db = new pg.Client({ connectionString: config.catalog.url });
    await db.connect();
  }, 90_000);
  afterAll(async () => {
    await db?.end();
    await c?.close();
  }, 60_000);

  it("uploads of different bytes on all three nodes at once (four each, all in flight together) all succeed and download whole from another node and through HAProxy; the shared directory holds exactly the packs the catalog records, each at its recorded size, and fsck reads every chunk back right", {
    timeout: 60_000,
  }, async () => {
    const before = await onDisk(root);
    // 20 MiB fills more than one pack (16 MiB on the filesystem): one upload, several names.
    const sizes = [20 * MiB + 17, 5 * MiB + 3, 2 * MiB + 1, 300_000];
    const jobs = [1, 2, 3].flatMap((i) => sizes.map((size, k) => ({ i, data: prng(100 * i + k, size) })));
    const spans: { start: number; end: number }[] = [];
    const ids = await Promise.all(
      jobs.map(async ({ i, data }, n) => {
        const start = Date.now();
        const id = await upload("admin", node(i), `fs-at-once-${i}-${n}`, data);
        spans.push({ start, end: Date.now() });
        return id;
      }),
    );
    expect(Math.max(...spans.map((s) => s.start))).toBeLessThan(Math.min(...spans.map((s) => s.end)));
    for (const [n, { i, data }] of jobs.entries()) {
      expect(await downloadMd5("admin", nextNode(i), ids[n]), `uploaded on node ${i}`).toBe(md5(data));
      expect(await downloadMd5("admin", lb(), ids[n])).toBe(md5(data));
      expected.set(ids[n], md5(data));
    }

    const after = await onDisk(root);
    const made = added(after.packs, before.packs);
    console.log(`at once: ${jobs.length} uploads wrote ${made.size} packs, ${sum(made)} bytes`);
    expect(made.size).toBeGreaterThanOrEqual(jobs.length + 3);
    expect(after.packs).toEqual(await catalogPacks());
    expect(after.temps).toEqual([]);
    const report = await fsck();
    expect(report).toMatchObject(clean);
    expect(report.bytesChecked).toBeGreaterThanOrEqual(jobs.reduce((n, j) => n + j.data.length, 0));
  });

  it("the same bytes uploaded on all three nodes at once, each writing its own copy before any commits, are all whole; the catalog indexes one copy (stored bytes grow by the image's size once) and a grace-0 collection on one node deletes the others' copies, leaving exactly the catalog's packs", {
    timeout: 60_000,
  }, async () => {
    const data = prng(2001, 24 * MiB + 5);
    const before = await onDisk(root);
    const storedBefore = await storedBytes();
    const ids: string[] = [];
    for (const i of [1, 2, 3]) {
      const created = await createImage("admin", node(i), `fs-same-${i}`);
      ids.push(((await created.json()) as { id: string }).id);
    }
    // All but the last byte: no upload can commit yet, and each node looks up and writes the
    // chunks as they stream, so each seals a first pack of its own before any is indexed.
    const puts = [1, 2, 3].map((i) => gatedUpload(node(i), ids[i - 1], data, data.length - 1));
    const deadline = Date.now() + 20_000;
    while (added((await onDisk(root)).packs, before.packs).size < 3) {
      if (Date.now() > deadline) throw new Error("the three uploads did not each seal a pack within 20 s");
      await sleep(50);
    }
    for (const p of puts) p.release();
    expect(await Promise.all(puts.map((p) => p.answer))).toEqual([204, 204, 204]);
    for (const [k, id] of ids.entries()) {
      expect(await downloadMd5("admin", nextNode(k + 1), id)).toBe(md5(data));
      expected.set(id, md5(data));
    }
    expect((await storedBytes()) - storedBefore).toBe(data.length);

    // The later commits record their packs too, but index none of their chunks: the first
    // commit's copies are the ones the catalog points at.
    const racing = added((await onDisk(root)).packs, before.packs);
    const live = await indexedPacks();
    const spare = [...racing.keys()].filter((id) => !live.has(id));
    console.log(
      `same bytes: ${sum(racing)} bytes in ${racing.size} packs for ${data.length} bytes, ` +
        `${spare.length} packs with no indexed chunk`,
    );
    expect(spare.length).toBeGreaterThanOrEqual(2);

    const gc = await collect(node(1), 0);
    expect(gc.packsTrashed).toBeGreaterThanOrEqual(spare.length);
    expect(gc.objectsDeleted).toBeGreaterThanOrEqual(spare.length);
    const after = await onDisk(root);
    for (const id of spare) expect(after.packs.has(id), `spare pack ${id}`).toBe(false);
    expect(after.packs).toEqual(await catalogPacks());
    // One copy left: the image's bytes plus the packs' headers, entries and trailers.
    const kept = sum(added(after.packs, before.packs));
    expect(kept).toBeGreaterThanOrEqual(data.length);
    expect(kept - data.length).toBeLessThan(256 * 1024);
    for (const id of ids) expect(await downloadMd5("admin", lb(), id)).toBe(md5(data));
  });

  it("grace-0 collections on node 1 while nodes 2 and 3 upload, upload again, delete and download leave every upload whole (md5 from another node and through HAProxy) and fsck clean; once the traffic stops a last one leaves exactly the catalog's packs, an empty trash and no temporary file", {
    timeout: 120_000,
  }, async () => {
    // Uploaded again and again on both nodes and deleted in between: its chunks die, are
    // condemned, come back by revival or by a new copy, while the collector deletes with no grace.
    const again = prng(3001, 4 * MiB + 1);
    let stop = false;
    const failures: string[] = [];
    /** Images of fresh bytes kept so far: their packs are wholly live, never repacked. */
    const fresh: [string, string][] = [];
    let uploads = 0;
    const traffic = async (i: 2 | 3) => {
      for (let k = 0; !stop; k++) {
        const repeat = k % 3 === 0;
        const data = repeat ? again : prng(3000 + i * 1000 + k, MiB + k * 4099);
        try {
          const id = await upload("admin", node(i), `fs-gc-${i}-${k}`, data);
          uploads++;
          if (k % 2 === 1) {
            const del = await as("admin", node(i))("DELETE", `/v2/images/${id}`);
            if (del.status !== 204) failures.push(`node ${i}: delete ${id}: ${del.status}`);
          } else {
            expected.set(id, md5(data));
            if (!repeat) fresh.push([id, md5(data)]);
          }
          // Only images of fresh bytes are read amid the collections: a pack shared by racing
          // uploads of `again` may be repacked, and with no grace a reader of the old one may
          // lose it mid-read (the grace period is what protects readers).
          if (fresh.length > 0) {
            const [other, want] = fresh[(k * 7 + i) % fresh.length];
            const got = await downloadMd5("admin", node(i), other);
            if (got !== want) failures.push(`node ${i}: ${other} md5 ${got}, expected ${want}`);
          }
        } catch (e) {
          failures.push(`node ${i}: ${(e as Error).message}`);
        }
      }
    };
    const running = [traffic(2), traffic(3)];
    const reports: GcStoreReport[] = [];
    const until = Date.now() + 8_000;
    while (Date.now() < until) {
      reports.push(await collect(node(1), 0));
      await sleep(200);
    }
    stop = true;
    await Promise.all(running);
    reports.push(await collect(node(1), 0));
    const total = (k: keyof GcStoreReport) => reports.reduce((n, r) => n + r[k], 0);
    console.log(
      `amid traffic: ${uploads} uploads, ${reports.length} collections: ${total("chunksDropped")} chunks ` +
        `dropped, ${total("packsTrashed")} packs and ${total("objectsDeleted")} objects deleted`,
    );
    expect(failures).toEqual([]);
    expect(uploads).toBeGreaterThan(6);
    expect(total("chunksDropped")).toBeGreaterThan(0);
    expect(total("objectsDeleted")).toBeGreaterThan(0);

    const listed = new Map((await listAll("admin", lb())).map((x) => [x.id, x.checksum]));
    for (const [id, want] of expected) {
      expect(listed.get(id), id).toBe(want);
      expect(await downloadMd5("admin", lb(), id), id).toBe(want);
    }
    for (const [id, want] of fresh.slice(0, 4)) expect(await downloadMd5("admin", node(1), id)).toBe(want);
    const report = await fsck();
    expect(report).toMatchObject(clean);
    const disk = await onDisk(root);
    expect(disk.packs).toEqual(await catalogPacks());
    expect(await trashed()).toBe(0);
    expect(disk.temps).toEqual([]);
  });
});
