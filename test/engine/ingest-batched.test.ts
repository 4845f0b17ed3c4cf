/**
 * Ingest where each index lookup costs a round trip (a PostgreSQL catalog, a real one this
 * test starts): chunks are looked up a batch at a time, the next batch cut while one is looked
 * up. Repeats across batches are still stored once, chunks the store holds are not written
 * again, and a source that fails while a lookup is in flight commits nothing and leaves no
 * pack behind once collected.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { prng } from "../helpers/data.js";
import { type Postgres, requirePostgres, startPostgres } from "../helpers/postgres.js";
import { collect, pieces } from "../helpers/store.js";

const run = requirePostgres("ingest on a PostgreSQL catalog");
const MiB = 1024 * 1024;

describe.skipIf(!run)("ingest on a catalog whose lookups are batched", () => {
  let pg: Postgres;
  let work: string;
  let engine: Engine;

  beforeAll(async () => {
    pg = await startPostgres();
    work = await mkdtemp(join(tmpdir(), "tessera-ingest-batched-"));
    engine = await Engine.openDir(work, {
      durable: false,
      packSize: MiB,
      catalog: { type: "postgres", url: await pg.createDatabase() },
    });
  }, 60_000);
  afterAll(async () => {
    await engine?.close();
    await pg?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("looks chunks up in batches of more than one", () => {
    expect(engine.store().index.batchHint).toBeGreaterThan(1);
  });

  it("stores a repeat several batches later once, and writes none of the chunks the store already holds", async () => {
    const a = Buffer.from(prng(1, 24 * MiB));
    const ra = await engine.ingest(pieces(a));
    expect(ra.bytesDeduplicated).toBe(0);
    // Held already (a's first 8 MiB), new (12 MiB), then the new part's start again, well
    // past the batches it was cut in.
    const fresh = Buffer.from(prng(2, 12 * MiB));
    const b = Buffer.concat([a.subarray(0, 8 * MiB), fresh, fresh.subarray(0, 6 * MiB)]);
    const rb = await engine.ingest(pieces(b));
    expect((await collect(engine.read(rb.manifestId))).equals(b)).toBe(true);
    // Chunk boundaries at the joins differ a little: all but a few chunks' bytes are deduplicated.
    expect(rb.bytesDeduplicated).toBeGreaterThan(13 * MiB);
    expect(rb.bytesNew).toBeLessThan(13 * MiB);
    expect((await collect(engine.read(ra.manifestId))).equals(a)).toBe(true);
  });

  it("commits nothing of a source that fails while its lookups are in flight, and a collection then deletes what it wrote", async () => {
    const before = (await engine.fsck()).stores[0];
    async function* failing(): AsyncGenerator<Uint8Array> {
      const data = Buffer.from(prng(3, 20 * MiB));
      for (let at = 0; at < 12 * MiB; at += 256 * 1024) yield data.subarray(at, at + 256 * 1024);
      throw new Error("the client went away");
    }
    await expect(engine.ingest(failing())).rejects.toThrow("the client went away");
    const gc = await engine.gc({ graceSeconds: 0 });
    expect(gc.stores[0]?.objectsDeleted).toBeGreaterThan(0);
    const after = (await engine.fsck()).stores[0];
    expect(after).toEqual(before);
    const again = Buffer.from(prng(3, 20 * MiB));
    const r = await engine.ingest(pieces(again));
    expect((await collect(engine.read(r.manifestId))).equals(again)).toBe(true);
  });
});
