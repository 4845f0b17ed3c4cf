/**
 * Garbage collection in another process than the writes (docs/format.md, the GC rule): what an
 * upload here found indexed, and what it is writing, outlive a collection there, because the
 * upload's lease is in the catalog. The same runs with the collector ignoring leases lose data
 * or fail the upload: the lease is what protects them, not luck or timing.
 */
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import type { Engine } from "../../src/engine/engine.js";
import type { GcReport } from "../../src/engine/gc.js";
import { ChunkVanishedError, NotFoundError } from "../../src/errors.js";
import { chunksOf, packsOf } from "../helpers/catalog.js";
import { prng } from "../helpers/data.js";
import { hammerWrites } from "../helpers/hammer.js";
import { collect, pieces, tempStores } from "../helpers/store.js";
import { waitFor } from "../helpers/wait.js";

const MiB = 1024 * 1024;
const CHILD = new URL("../helpers/gc-child.mjs", import.meta.url).pathname;
const store = tempStores();

/** One collection (grace 0) in a child process over `dir`; its report. */
async function gcElsewhere(dir: string, ignoreLeases = false): Promise<GcReport> {
  const child = spawn(process.execPath, [CHILD, dir, "once", ...(ignoreLeases ? ["ignore-leases"] : [])], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (b: Buffer) => {
    out += b.toString();
  });
  const code = await new Promise((r) => child.once("exit", r));
  expect(code).toBe(0);
  return JSON.parse(out) as GcReport;
}

/** An ingest of `data` that stops after `at` bytes until `resume` is called. */
function stalledIngest(engine: Engine, data: Buffer, at: number) {
  let resume: () => void = () => {};
  const paused = new Promise<void>((r) => {
    resume = r;
  });
  let reached: () => void = () => {};
  const halfway = new Promise<void>((r) => {
    reached = r;
  });
  const done = engine.ingest(
    (async function* () {
      yield* pieces(data.subarray(0, at));
      reached();
      await paused;
      yield* pieces(data.subarray(at));
    })(),
  );
  done.catch(() => {});
  return { done, halfway, resume };
}

async function storedObjects(engine: Engine): Promise<number> {
  let n = 0;
  for await (const _ of engine.store().backend.list("")) n++;
  return n;
}

/** Found indexed here, condemned there: the upload revives the chunks at its commit, or fails. */
async function foundIndexed(ignoreLeases: boolean) {
  const { engine, dir } = await store();
  const data = Buffer.from(prng(61, 6 * MiB));
  const a = await engine.ingest(pieces(data));
  const b = stalledIngest(engine, data, 4 * MiB);
  await b.halfway;
  await engine.release(a.manifestId);
  const report = await gcElsewhere(dir, ignoreLeases);
  b.resume();
  return { engine, data, report, b };
}

/** Written here, not yet committed: orphans to a collector elsewhere. */
async function beingWritten(ignoreLeases: boolean) {
  const { engine, dir } = await store();
  const before = await storedObjects(engine);
  const data = Buffer.from(prng(62, 5 * MiB));
  const b = stalledIngest(engine, data, 4 * MiB);
  await b.halfway;
  await waitFor("the stalled upload's first packs", async () => (await storedObjects(engine)) > before + 1);
  const report = await gcElsewhere(dir, ignoreLeases);
  b.resume();
  return { engine, data, report, b };
}

describe("garbage collection in another process", () => {
  it("spares the chunks an upload here found indexed: the upload revives them and reads back whole", async () => {
    const { engine, data, report, b } = await foundIndexed(false);
    expect(report.stores[0]?.chunksDropped).toBeGreaterThan(0);
    expect(report.stores[0]?.chunksPinned).toBeGreaterThan(0);
    expect(report.stores[0]?.objectsDeleted).toBe(0);
    const r = await b.done;
    expect((await collect(engine.read(r.manifestId))).equals(data)).toBe(true);
    expect((await engine.fsck()).stores[0]).toMatchObject({
      badChunks: 0,
      missingChunks: 0,
      missingPacks: 0,
    });
  });

  it("without the lease rule, the same collection deletes those chunks and the upload fails", async () => {
    const { report, b } = await foundIndexed(true);
    expect(report.stores[0]?.objectsDeleted).toBeGreaterThan(0);
    await expect(b.done).rejects.toBeInstanceOf(ChunkVanishedError);
  });

  it("spares the packs an upload here is writing: it commits and reads back whole", async () => {
    const { engine, data, report, b } = await beingWritten(false);
    expect(report.stores[0]?.orphansTrashed).toBeGreaterThan(0);
    expect(report.stores[0]?.objectsDeleted).toBe(0);
    const r = await b.done;
    expect((await collect(engine.read(r.manifestId))).equals(data)).toBe(true);
    expect((await engine.fsck()).stores[0]).toMatchObject({
      badChunks: 0,
      missingChunks: 0,
      missingPacks: 0,
    });
  });

  it("without the lease rule, the same collection deletes those packs and the committed image is lost", async () => {
    const { engine, report, b } = await beingWritten(true);
    expect(report.stores[0]?.objectsDeleted).toBeGreaterThan(0);
    const r = await b.done;
    await expect(collect(engine.read(r.manifestId))).rejects.toBeInstanceOf(NotFoundError);
  });

  it("survives a hammer of uploads and deletes here beside back-to-back collections there: survivors whole, nothing unreferenced", {
    timeout: 60_000,
  }, async () => {
    const { engine, dir } = await store();
    const child = spawn(process.execPath, [CHILD, dir, "loop"], { stdio: ["pipe", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    const exited = new Promise((r) => child.once("exit", r));
    const deadline = Date.now() + 8000;
    let live: Map<string, { data: Buffer; holders: number }>;
    try {
      live = await hammerWrites(engine, deadline, 70);
    } finally {
      child.stdin?.end();
      await exited;
    }
    expect((JSON.parse(out) as { runs: number }).runs).toBeGreaterThan(2);
    for (const [id, { data }] of live) expect((await collect(engine.read(id))).equals(data), id).toBe(true);
    await engine.gc({ graceSeconds: 0 });
    for (const [id, { data }] of live) expect((await collect(engine.read(id))).equals(data), id).toBe(true);
    expect((await engine.fsck()).stores[0]).toMatchObject({
      badChunks: 0,
      missingChunks: 0,
      missingPacks: 0,
    });
    const chunks = await chunksOf(engine);
    expect(chunks.every(({ rec }) => rec.refs > 0)).toBe(true);
    const livePacks = new Set(chunks.map(({ rec }) => rec.pack.toString("hex")));
    expect((await packsOf(engine)).map(({ id }) => id.toString("hex")).sort()).toEqual([...livePacks].sort());
  });
});
