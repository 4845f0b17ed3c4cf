/**
 * The location cache of a node whose catalog's lookups cost a round trip (a real PostgreSQL
 * this test starts): an image this node wrote or has read is read again without asking the
 * catalog where its chunks are, and a remembered place that a collection emptied (a repack
 * moved the chunks and deleted the pack) is looked up again, the bytes still right.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { chunkIdOf } from "../../src/catalog/manifest.js";
import { Engine } from "../../src/engine/engine.js";
import { loadManifest } from "../../src/engine/read.js";
import { prng } from "../helpers/data.js";
import { type Postgres, requirePostgres, startPostgres } from "../helpers/postgres.js";
import { collect, pieces } from "../helpers/store.js";

const run = requirePostgres("the location cache on a PostgreSQL catalog");
const MiB = 1024 * 1024;

describe.skipIf(!run)("the location cache", () => {
  let pg: Postgres;
  const dirs: string[] = [];
  const engines: Engine[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
  }, 60_000);
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close();
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  afterAll(async () => {
    await pg?.destroy();
  });

  async function open(dir?: string, url?: string) {
    const work = dir ?? (await mkdtemp(join(tmpdir(), "tessera-location-cache-")));
    if (!dir) dirs.push(work);
    const catalog = { type: "postgres" as const, url: url ?? (await pg.createDatabase()) };
    const engine = await Engine.openDir(work, { durable: false, packSize: MiB, catalog });
    engines.push(engine);
    return { engine, work, url: catalog.url };
  }

  /** Calls of the store's chunk lookup while `fn` runs. */
  async function lookupsDuring(engine: Engine, fn: () => Promise<unknown>): Promise<number> {
    const spy = vi.spyOn(engine.store().index, "lookup");
    try {
      await fn();
      return spy.mock.calls.length;
    } finally {
      spy.mockRestore();
    }
  }

  it("reads what this node wrote without a lookup", async () => {
    const { engine } = await open();
    expect(engine.locations).toBeDefined();
    const data = Buffer.from(prng(1, 6 * MiB));
    const r = await engine.ingest(pieces(data));
    let got: Buffer = Buffer.alloc(0);
    const asked = await lookupsDuring(engine, async () => {
      got = await collect(engine.read(r.manifestId));
    });
    expect(got.equals(data)).toBe(true);
    expect(asked).toBe(0);
  });

  it("asks the catalog on a node's first read of an image and not on the next", async () => {
    const first = await open();
    const data = Buffer.from(prng(2, 6 * MiB));
    const r = await first.engine.ingest(pieces(data));
    await first.engine.close();
    engines.splice(engines.indexOf(first.engine), 1);
    // The same catalog and store, a node that has written and read nothing yet.
    const { engine } = await open(first.work, first.url);
    const once = await lookupsDuring(engine, async () => {
      expect((await collect(engine.read(r.manifestId))).equals(data)).toBe(true);
    });
    expect(once).toBeGreaterThan(0);
    const again = await lookupsDuring(engine, async () => {
      expect((await collect(engine.read(r.manifestId))).equals(data)).toBe(true);
    });
    expect(again).toBe(0);
  });

  it("looks chunks up again when the pack it remembers was repacked and deleted, and reads the right bytes", async () => {
    const { engine } = await open();
    // x's packs hold most of y's chunks; x released, those packs are mostly dead.
    const x = Buffer.from(prng(30, 8 * MiB));
    const parts: Buffer[] = [];
    for (let i = 0; i < 8; i++) {
      parts.push(x.subarray(i * MiB, i * MiB + 256 * 1024), Buffer.from(prng(40 + i, 64 * 1024)));
    }
    const y = Buffer.concat(parts);
    const rx = await engine.ingest(pieces(x));
    const ry = await engine.ingest(pieces(y));
    await engine.release(rx.manifestId);
    const gc = await engine.gc({ graceSeconds: 0 });
    expect(gc.stores[0]?.packsRepacked).toBeGreaterThan(4);
    // The node still remembers x's packs for y's chunks: gone, so looked up again.
    const relocated = await lookupsDuring(engine, async () => {
      expect((await collect(engine.read(ry.manifestId))).equals(y)).toBe(true);
    });
    expect(relocated).toBeGreaterThan(0);
    // And remembered where they are now.
    const after = await lookupsDuring(engine, async () => {
      expect((await collect(engine.read(ry.manifestId))).equals(y)).toBe(true);
    });
    expect(after).toBe(0);
  });

  it("looks chunks up again when the bytes at a remembered place fail their check (a repair elsewhere moved them), and reads the right bytes", async () => {
    const { engine } = await open();
    const data = Buffer.from(prng(5, 6 * MiB));
    const r = await engine.ingest(pieces(data));
    // As if fsck on another node had written a good copy elsewhere and pointed the index at
    // it, while this node still remembers the first copy, since damaged: the place one byte on.
    const m = await loadManifest(engine, Buffer.from(r.manifestId, "hex"));
    const id = chunkIdOf(m, 3) as Buffer;
    const at = engine.locations?.get(id);
    if (!at) throw new Error("the ingest's chunk is not remembered");
    engine.locations?.set(id, { store: at.store, rec: { ...at.rec, offset: at.rec.offset + 1 } });
    const asked = await lookupsDuring(engine, async () => {
      expect((await collect(engine.read(r.manifestId))).equals(data)).toBe(true);
    });
    expect(asked).toBeGreaterThan(0);
    expect(engine.locations?.get(id)?.rec.offset).toBe(at.rec.offset);
  });

  it("is not kept on a local catalog, whose lookups cost no round trip", async () => {
    const work = await mkdtemp(join(tmpdir(), "tessera-location-cache-"));
    dirs.push(work);
    const engine = await Engine.openDir(work, { durable: false });
    engines.push(engine);
    expect(engine.locations).toBeUndefined();
  });
});
