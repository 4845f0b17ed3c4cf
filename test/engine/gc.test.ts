/**
 * Garbage collection: what nothing references goes (index entries, packs, manifest objects,
 * leftovers of failed writes), what anything references stays, including what an ingest in
 * progress has found indexed; the grace period holds deletions back; a dry run changes
 * nothing; and a bounded hammer of uploads, deletes and collections leaves every surviving
 * object intact and nothing unreferenced behind.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdir, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { StoreFullError } from "../../src/errors.js";
import { decodeWholePack, ENTRY_FLAG_MANIFEST } from "../../src/store/pack-format.js";
import { chunksOf, loseIndex, packsOf, trashOf } from "../helpers/catalog.js";
import { prng } from "../helpers/data.js";
import { hammerWrites } from "../helpers/hammer.js";
import { collect, pieces, tempStores } from "../helpers/store.js";
import { waitFor } from "../helpers/wait.js";

const MiB = 1024 * 1024;
const store = tempStores();

/** Whether a whole pack's bytes list a manifest entry. */
function carriesManifest(pack: Buffer): boolean {
  return decodeWholePack(pack).some((e) => e.flags & ENTRY_FLAG_MANIFEST);
}

async function storedBytes(engine: Engine, name?: string): Promise<{ objects: number; bytes: number }> {
  let objects = 0;
  let bytes = 0;
  for await (const o of engine.store(name).backend.list("")) {
    objects++;
    bytes += o.size;
  }
  return { objects, bytes };
}

async function indexed(engine: Engine): Promise<{ chunks: number; packs: number }> {
  return { chunks: (await chunksOf(engine)).length, packs: (await packsOf(engine)).length };
}

/**
 * x (8 MiB of `seed`) and y, which keeps a quarter of each MiB of x beside bytes of its own,
 * stored; x released: each of x's 1 MiB packs is left mostly dead. y and its ingest's result.
 */
async function leaveMostlyDead(engine: Engine, seed: number) {
  const x = Buffer.from(prng(seed, 8 * MiB));
  const parts: Buffer[] = [];
  for (let i = 0; i < 8; i++) {
    parts.push(x.subarray(i * MiB, i * MiB + 256 * 1024), Buffer.from(prng(seed + 10 + i, 64 * 1024)));
  }
  const y = Buffer.concat(parts);
  const rx = await engine.ingest(pieces(x));
  const ry = await engine.ingest(pieces(y));
  await engine.release(rx.manifestId);
  return { y, ry };
}

describe("garbage collection", () => {
  it("returns a store to its format record once every object is released: index, packs, manifests", async () => {
    const { engine } = await store();
    const base = Buffer.from(prng(1, 4 * MiB));
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const own = Buffer.from(prng(10 + i, MiB));
      ids.push((await engine.ingest(pieces(Buffer.concat([base, own])))).manifestId);
    }
    const before = await storedBytes(engine);
    for (const id of ids) await engine.release(id);
    const report = await engine.gc({ graceSeconds: 0 });
    const after = await storedBytes(engine);
    expect(after.bytes).toBeLessThanOrEqual(before.bytes / 100);
    expect(after.objects).toBe(1); // tessera-store.json
    expect(await indexed(engine)).toEqual({ chunks: 0, packs: 0 });
    expect(report.stores[0]).toMatchObject({ chunksPinned: 0, trashWaiting: 0 });
    expect(report.stores[0]?.bytesDeleted).toBeGreaterThan(before.bytes * 0.9);
  });

  it("frees only what a released object did not share, and the others read back whole", async () => {
    const { engine } = await store();
    const base = Buffer.from(prng(2, 6 * MiB));
    const derived = Buffer.concat([base, Buffer.from(prng(3, 3 * MiB))]);
    const a = await engine.ingest(pieces(base));
    const b = await engine.ingest(pieces(derived));
    await engine.release(b.manifestId);
    const r = await engine.gc({ graceSeconds: 0 });
    // b's own chunks (its 3 MiB and the one where base and its data meet) and nothing of a's.
    expect(r.stores[0]?.bytesDropped).toBe(b.bytesStored);
    expect((await collect(engine.read(a.manifestId))).equals(base)).toBe(true);
    expect(r.stores[0]?.chunksDropped).toBe(b.newChunks);
  });

  it("changes nothing in a dry run, and says what a real run then frees", async () => {
    const { engine } = await store();
    const a = await engine.ingest(pieces(prng(4, 5 * MiB)));
    await engine.release(a.manifestId);
    const before = { ...(await indexed(engine)), ...(await storedBytes(engine)) };
    const dry = await engine.gc({ graceSeconds: 0, dryRun: true });
    expect({ ...(await indexed(engine)), ...(await storedBytes(engine)) }).toEqual(before);
    const real = await engine.gc({ graceSeconds: 0 });
    const pick = (r: typeof dry) => {
      const { chunksDropped, bytesDropped, packsTrashed, objectsDeleted } = r.stores[0] ?? {};
      return { chunksDropped, bytesDropped, packsTrashed, objectsDeleted };
    };
    // The dry run cannot count the packs' deletion as done in the same run: they are not in
    // the trash yet. Everything else matches.
    expect({ ...pick(dry), objectsDeleted: 0 }).toEqual({ ...pick(real), objectsDeleted: 0 });
    expect(real.stores[0]?.objectsDeleted).toBeGreaterThan(0);
  });

  it("keeps unreferenced packs in the trash for the grace period, and deletes them after it", async () => {
    const { engine } = await store();
    const a = await engine.ingest(pieces(prng(5, 3 * MiB)));
    await engine.release(a.manifestId);
    const before = await storedBytes(engine);
    const first = await engine.gc({ graceSeconds: 1 });
    expect(first.stores[0]?.objectsDeleted).toBe(0);
    expect(first.stores[0]?.trashWaiting).toBeGreaterThan(0);
    expect(await storedBytes(engine)).toEqual(before);
    await new Promise((r) => setTimeout(r, 1100));
    const second = await engine.gc({ graceSeconds: 1 });
    expect(second.stores[0]?.objectsDeleted).toBe(first.stores[0]?.trashWaiting);
    expect((await storedBytes(engine)).objects).toBe(1);
  });

  it("a run with no grace deletes what an earlier run with a long grace put in the trash", async () => {
    const { engine } = await store();
    const a = await engine.ingest(pieces(prng(5, 3 * MiB)));
    await engine.release(a.manifestId);
    const first = await engine.gc({ graceSeconds: 3600 });
    expect(first.stores[0]?.trashWaiting).toBeGreaterThan(0);
    const dry = await engine.gc({ graceSeconds: 0, dryRun: true });
    expect(dry.stores[0]?.objectsDeleted).toBe(first.stores[0]?.trashWaiting);
    const now = await engine.gc({ graceSeconds: 0 });
    expect(now.stores[0]?.objectsDeleted).toBe(first.stores[0]?.trashWaiting);
    expect(now.stores[0]?.trashWaiting).toBe(0);
    expect((await storedBytes(engine)).objects).toBe(1);
  });

  it("on a store with no room for new packs, skips repacking and still deletes what is due", async () => {
    const { engine } = await store();
    const a = Buffer.from(prng(40, 2 * MiB));
    const b = Buffer.concat([a.subarray(0, 256 * 1024), Buffer.from(prng(41, MiB))]);
    const ra = await engine.ingest(pieces(a));
    const rb = await engine.ingest(pieces(b));
    await engine.release(ra.manifestId);
    const backend = engine.store().backend;
    backend.put = async () => {
      throw new StoreFullError("Image storage media is full: no space left in the test");
    };
    const r = await engine.gc({ graceSeconds: 0 });
    expect(r.stores[0]?.packsRepacked).toBeGreaterThan(0); // tried, and left as they were
    expect(r.stores[0]?.objectsDeleted).toBeGreaterThan(0);
    expect((await collect(engine.read(rb.manifestId))).equals(b)).toBe(true);
  });

  it("spares the chunks an ingest in progress found indexed, though their last holder went meanwhile", async () => {
    const { engine } = await store();
    const data = Buffer.from(prng(6, 6 * MiB));
    const a = await engine.ingest(pieces(data));
    let resume: () => void = () => {};
    const paused = new Promise<void>((r) => {
      resume = r;
    });
    let reached: () => void = () => {};
    const halfway = new Promise<void>((r) => {
      reached = r;
    });
    // The same bytes again, stalled after 4 MiB: its chunks so far are a's, found indexed.
    const slow = (async function* () {
      yield data.subarray(0, 4 * MiB);
      reached();
      await paused;
      yield data.subarray(4 * MiB);
    })();
    const second = engine.ingest(slow);
    await halfway;
    // Its first chunks found indexed as a's, under its lease.
    await waitFor("the second ingest's lease", async () => (await engine.catalog.liveLeases()).length > 0);
    await engine.release(a.manifestId);
    const r = await engine.gc({ graceSeconds: 0 });
    expect(r.stores[0]?.chunksPinned).toBeGreaterThan(0);
    resume();
    const b = await second;
    expect(b.manifestId).toBe(a.manifestId);
    expect((await collect(engine.read(b.manifestId))).equals(data)).toBe(true);
    // What was pinned and not needed in the end (nothing here) goes at the next run.
    await engine.gc({ graceSeconds: 0 });
    expect((await collect(engine.read(b.manifestId))).equals(data)).toBe(true);
  });

  it("collects what a failed ingest left on the backend, but never what an ingest in progress is writing", async () => {
    const { engine } = await store();
    const failing = (async function* () {
      yield prng(7, 3 * MiB);
      throw new Error("client went away");
    })();
    await expect(engine.ingest(failing)).rejects.toThrow("client went away");
    const left = await storedBytes(engine);
    expect(left.objects).toBeGreaterThan(1);
    let resume: () => void = () => {};
    const paused = new Promise<void>((r) => {
      resume = r;
    });
    const data = Buffer.from(prng(8, 5 * MiB));
    const running = engine.ingest(
      (async function* () {
        yield data.subarray(0, 4 * MiB);
        await paused;
        yield data.subarray(4 * MiB);
      })(),
    );
    // Its first packs sealed and written (1 MiB packs: 4 MiB make three), so that the collection
    // meets objects of an ingest in progress.
    await waitFor("the running ingest's first pack on the backend", async () => {
      return (await storedBytes(engine)).objects > left.objects;
    });
    // The running ingest's objects are orphans too, but its lease holds them (and, as it began
    // before they were trashed, what the failed ingest left): nothing goes yet.
    const r = await engine.gc({ graceSeconds: 0 });
    expect(r.stores[0]?.orphansTrashed).toBeGreaterThanOrEqual(left.objects - 1);
    expect(r.stores[0]?.objectsDeleted).toBe(0);
    resume();
    const done = await running;
    expect((await collect(engine.read(done.manifestId))).equals(data)).toBe(true);
    // Once it has committed, what the failed ingest left goes, and nothing of the new object.
    const after = await engine.gc({ graceSeconds: 0 });
    expect(after.stores[0]?.objectsDeleted).toBe(left.objects - 1);
    expect((await collect(engine.read(done.manifestId))).equals(data)).toBe(true);
  });

  it("keeps the rebuild copy of a manifest carried in a pack that goes", async () => {
    const { engine } = await store();
    const data = Buffer.from(prng(9, 2 * MiB));
    // The same new bytes twice at once, each ingest's last pack (with the manifest in it) held
    // back until both are written: both carry the manifest, the second to commit finds its
    // chunks indexed already, and its packs are dead though its manifest is the live object's.
    const backend = engine.store().backend;
    const realPut = backend.put.bind(backend);
    let arrived = 0;
    let release: () => void = () => {};
    const both = new Promise<void>((r) => {
      release = r;
    });
    backend.put = async (name, parts) => {
      if (name.startsWith("packs/") && carriesManifest(parts[0] as Buffer)) {
        if (++arrived === 2) release();
        await both;
      }
      return realPut(name, parts);
    };
    const [a] = await Promise.all([engine.ingest(pieces(data)), engine.ingest(pieces(data))]);
    backend.put = realPut;
    const r = await engine.gc({ graceSeconds: 0 });
    expect(r.stores[0]?.packsTrashed).toBe(a.packsWritten);
    const names: string[] = [];
    for await (const o of engine.store().backend.list("manifests/")) names.push(o.name);
    expect(names).toEqual([`manifests/${a.manifestId.slice(0, 2)}/${a.manifestId}`]);
    await loseIndex(engine);
    await engine.rebuildIndex();
    expect((await collect(engine.read(a.manifestId))).equals(data)).toBe(true);
  });

  it("frees a store's copy of a released object and leaves the other store's", async () => {
    const { engine } = await store({
      stores: { local: { type: "filesystem" }, edge: { type: "filesystem" } },
    });
    const data = Buffer.from(prng(11, 3 * MiB));
    const a = await engine.ingest(pieces(data), { store: "local" });
    await engine.copy(a.manifestId, "edge");
    await engine.release(a.manifestId, "local");
    await engine.gc({ graceSeconds: 0 });
    expect((await storedBytes(engine, "local")).objects).toBe(1);
    expect((await storedBytes(engine, "edge")).bytes).toBeGreaterThan(3 * MiB);
    expect((await collect(engine.read(a.manifestId))).equals(data)).toBe(true);
  });

  it("repacks packs left mostly dead: live chunks move to new packs, the old ones go, every byte still reads", async () => {
    const { engine } = await store();
    const { y, ry } = await leaveMostlyDead(engine, 30);
    const dry = await engine.gc({ graceSeconds: 0, dryRun: true });
    expect(dry.stores[0]?.packsRepacked).toBeGreaterThan(4);
    const before = await storedBytes(engine);
    const r = await engine.gc({ graceSeconds: 0 });
    expect(r.stores[0]?.packsRepacked).toBe(dry.stores[0]?.packsRepacked);
    const after = await storedBytes(engine);
    expect(after.bytes).toBeLessThan(before.bytes / 2);
    expect((await collect(engine.read(ry.manifestId))).equals(y)).toBe(true);
    // Every pack left is mostly live, and a second run finds nothing to do.
    const again = await engine.gc({ graceSeconds: 0 });
    expect(again.stores[0]).toMatchObject({
      packsRepacked: 0,
      packsTrashed: 0,
      chunksDropped: 0,
      objectsDeleted: 0,
    });
    // The index rebuilt from the packs alone points at the new packs.
    await loseIndex(engine);
    await engine.rebuildIndex();
    expect((await collect(engine.read(ry.manifestId))).equals(y)).toBe(true);
  });

  it("a read that located its chunks before a no-grace collection repacked them and deleted their packs looks them up again and reads every byte", async () => {
    // Small reads, little ahead: most of y's segments are located (a lookup covers 512
    // chunks) but not yet read when the first piece is handed out.
    const { engine } = await store({ packSize: MiB, readSegmentBytes: 64 * 1024, readAheadBytes: 64 * 1024 });
    const { y, ry } = await leaveMostlyDead(engine, 50);
    const reading = engine.read(ry.manifestId)[Symbol.asyncIterator]();
    const got: Buffer[] = [];
    const first = await reading.next();
    if (!first.done) got.push(first.value);
    const packsBefore = new Set((await packsOf(engine)).map((p) => p.id.toString("hex")));
    const r = await engine.gc({ graceSeconds: 0 });
    expect(r.stores[0]?.packsRepacked).toBeGreaterThan(4);
    // The packs y's chunks were located in are gone from the store, not only from the index.
    const left = new Set((await packsOf(engine)).map((p) => p.id.toString("hex")));
    expect([...packsBefore].filter((p) => !left.has(p)).length).toBeGreaterThan(4);
    for (let n = await reading.next(); !n.done; n = await reading.next()) got.push(n.value);
    expect(Buffer.concat(got).equals(y)).toBe(true);
  });

  it("deletes the temporary files of puts a crash cut off once they are older than a lease, and leaves younger ones", async () => {
    const { engine, dir } = await store({ leaseMs: 60_000 });
    await engine.ingest(pieces(Buffer.from(prng(70, 2 * MiB))));
    const packDir = join(dir, "objects", "packs", "00");
    await mkdir(packDir, { recursive: true });
    const stale = join(packDir, ".tmp-0123456789abcdef");
    const fresh = join(packDir, ".tmp-fedcba9876543210");
    await writeFile(stale, "a pack cut off");
    await writeFile(fresh, "a pack being written");
    const old = new Date(Date.now() - 120_000);
    await utimes(stale, old, old);
    const dry = await engine.gc({ graceSeconds: 0, dryRun: true });
    expect(dry.stores[0]?.leftoversDeleted).toBe(0);
    const r = await engine.gc({ graceSeconds: 0 });
    expect(r.stores[0]?.leftoversDeleted).toBe(1);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    const listed: string[] = [];
    for await (const o of engine.store().backend.list("")) listed.push(o.name);
    expect(listed.some((n) => n.includes(".tmp-"))).toBe(false);
  });

  it("survives a hammer of overlapping uploads, deletes and collections: survivors intact, nothing unreferenced left", async () => {
    const { engine } = await store();
    const deadline = Date.now() + 4000;
    let gcs = 0;
    const collector = (async () => {
      while (Date.now() < deadline) {
        await engine.gc({ graceSeconds: 0 });
        gcs++;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const [, live] = await Promise.all([collector, hammerWrites(engine, deadline, 20)]);
    expect(gcs).toBeGreaterThan(2);
    for (const [id, { data }] of live) expect((await collect(engine.read(id))).equals(data), id).toBe(true);
    await engine.gc({ graceSeconds: 0 });
    for (const [id, { data }] of live) expect((await collect(engine.read(id))).equals(data), id).toBe(true);
    // Nothing unreferenced: every indexed chunk is referenced, every pack has a live chunk.
    const chunks = await chunksOf(engine);
    expect(chunks.every(({ rec }) => rec.refs > 0)).toBe(true);
    const livePacks = new Set(chunks.map(({ rec }) => rec.pack.toString("hex")));
    expect((await packsOf(engine)).map(({ id }) => id.toString("hex")).sort()).toEqual([...livePacks].sort());
    let packObjects = 0;
    for await (const _ of engine.store().backend.list("packs/")) packObjects++;
    expect(packObjects).toBe(livePacks.size);
  });
});

describe("garbage collection killed at random points", () => {
  it("leaves a store that the next collection finishes: kept objects whole, nothing unreferenced", {
    timeout: 60_000,
  }, async () => {
    const BIN = new URL("../../dist/src/cli/main.js", import.meta.url).pathname;
    const s = await store();
    const kept: { id: string; data: Buffer }[] = [];
    for (let i = 0; i < 40; i++) {
      const data = Buffer.from(prng(100 + i, 2 * MiB));
      const r = await s.engine.ingest(pieces(data));
      if (i % 4 === 0) kept.push({ id: r.manifestId, data });
      else await s.engine.release(r.manifestId);
    }
    await s.engine.close();
    // Each try on a fresh copy of the store, the CLI killed at a random time in its run (~270 ms
    // to start, then the collection), or as soon as it has deleted its first pack plus a few
    // random milliseconds, then finished by a collection in this process.
    const delays = prng(7, 16);
    const packFiles = async (dir: string) => {
      let n = 0;
      const top = join(dir, "objects", "packs");
      for (const sub of await readdir(top).catch(() => [])) n += (await readdir(join(top, sub))).length;
      return n;
    };
    for (let k = 0; k < 8; k++) {
      const dir = `${s.dir}-try${k}`;
      await cp(s.dir, dir, { recursive: true });
      store.defer(() => rm(dir, { recursive: true, force: true }));
      const before = await packFiles(dir);
      const child = spawn(process.execPath, [BIN, "gc", "--data", dir, "--grace", "0", "--no-fsync"], {
        stdio: "ignore",
      });
      // Listening from the start: a run that ends before the kill must not be waited for forever.
      let done = false;
      const exited = new Promise((r) =>
        child.once("exit", () => {
          done = true;
          r(undefined);
        }),
      );
      const jitter = (delays[k] as number) % 20;
      if (k % 2 === 0) {
        await new Promise((r) => setTimeout(r, 200 + ((delays[k] as number) % 250)));
      } else {
        while (!done && (await packFiles(dir)) >= before) await new Promise((r) => setTimeout(r, 2));
        await new Promise((r) => setTimeout(r, jitter));
      }
      child.kill("SIGKILL");
      await exited;
      const engine = await Engine.openDir(dir, { durable: false });
      try {
        await engine.gc({ graceSeconds: 0 });
        for (const { id, data } of kept) expect((await collect(engine.read(id))).equals(data)).toBe(true);
        expect((await chunksOf(engine)).every(({ rec }) => rec.refs > 0)).toBe(true);
        let packs = 0;
        for await (const _ of engine.store().backend.list("packs/")) packs++;
        expect(packs).toBe((await packsOf(engine)).length);
        expect(await trashOf(engine)).toEqual([]);
      } finally {
        await engine.close();
      }
    }
  });
});
