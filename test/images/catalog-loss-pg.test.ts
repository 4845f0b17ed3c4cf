/**
 * The PostgreSQL catalog lost whole (its database dropped, an empty one made for the rebuild):
 * `tessera rebuild-index` brings every image back from the stores' record objects, as with
 * LMDB (test/helpers/catalog-loss.ts has the story). Needs Debian's PostgreSQL: skipped with a
 * message where it is missing, except in CI.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, it } from "vitest";
import { loseAndRestore, twoStores } from "../helpers/catalog-loss.js";
import { type Postgres, requirePostgres, startPostgres } from "../helpers/postgres.js";

const run = requirePostgres("the PostgreSQL catalog lost and rebuilt");

describe.skipIf(!run)("the PostgreSQL catalog lost", () => {
  let pg: Postgres;
  let work: string;
  beforeAll(async () => {
    pg = await startPostgres();
    work = await mkdtemp(join(tmpdir(), "tessera-pg-loss-"));
  }, 60_000);
  afterAll(async () => {
    await pg?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("rebuild-index into an empty database brings back every image with every field, its members, holders and usage, and downloads are intact", async () => {
    const url = await pg.createDatabase();
    const base = { stores: twoStores(work), gcIntervalSeconds: 0, scrubIntervalSeconds: 0 };
    await loseAndRestore(work, { ...base, catalog: { type: "postgres", url } }, async () => {
      await pg.dropDatabase(url);
      return { ...base, catalog: { type: "postgres", url: await pg.createDatabase() } };
    });
  }, 180_000);
});
