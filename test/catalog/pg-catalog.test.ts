/** The PostgreSQL catalog against the catalog conformance suite, on a real PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgCatalog } from "../../src/catalog/pg/pg-catalog.js";
import { type Postgres, requirePostgres, startPostgres } from "../helpers/postgres.js";
import { runCatalogConformance } from "./catalog-conformance.js";

/** Ends every other session on `url`'s database, as the death of the node holding them would. */
async function terminateOthers(url: string): Promise<void> {
  const { default: pgClient } = await import("pg");
  const c = new pgClient.Client({ connectionString: url });
  await c.connect();
  await c.query(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%pg_advisory_lock%'",
  );
  await c.end();
}

const run = requirePostgres("the PostgreSQL catalog's conformance");

describe.skipIf(!run)("the PostgreSQL catalog", () => {
  let pg: Postgres;
  beforeAll(async () => {
    pg = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await pg?.destroy();
  });

  it("holds a lock for one of two catalogs on the same database at a time (two nodes), and frees it when the holder's connection ends", async () => {
    const url = await pg.createDatabase();
    const [one, two] = [await PgCatalog.open({ url }), await PgCatalog.open({ url })];
    try {
      const log: string[] = [];
      let release: () => void = () => {};
      const held = new Promise<void>((r) => {
        release = r;
      });
      const first = one.exclusively("gc", async () => {
        log.push("one in");
        await held;
        log.push("one out");
      });
      while (log.length === 0) await new Promise((r) => setTimeout(r, 5));
      const second = two.exclusively("gc", async () => {
        log.push("two in");
      });
      await new Promise((r) => setTimeout(r, 100));
      expect(log).toEqual(["one in"]);
      release();
      await Promise.all([first, second]);
      expect(log).toEqual(["one in", "one out", "two in"]);
      // A node that dies mid-way: its connections end, and the lock is free for the others.
      let entered = false;
      let finish: () => void = () => {};
      const dying = one.exclusively("gc", async () => {
        entered = true;
        await new Promise<void>((r) => {
          finish = r;
        });
      });
      while (!entered) await new Promise((r) => setTimeout(r, 5));
      await terminateOthers(url);
      expect(await two.exclusively("gc", async () => "taken")).toBe("taken");
      finish();
      await dying;
    } finally {
      await one.close().catch(() => {});
      await two.close();
      await pg.dropDatabase(url);
    }
  });

  runCatalogConformance("PostgreSQL, a fresh database each", async () => {
    const url = await pg.createDatabase();
    const catalog = await PgCatalog.open({ url });
    return {
      catalog,
      cleanup: async () => {
        await catalog.close();
        await pg.dropDatabase(url);
      },
    };
  });
});
