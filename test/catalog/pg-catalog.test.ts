/** The PostgreSQL catalog against the catalog conformance suite, on a real PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOOKUP_TEXT } from "../../src/catalog/pg/chunk-index.js";
import { PgCatalog } from "../../src/catalog/pg/pg-catalog.js";
import { MIGRATIONS, SCHEMA_VERSION } from "../../src/catalog/pg/schema.js";
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

  /** A client on `url`, ended after `fn`. */
  async function onDatabase<T>(url: string, fn: (c: import("pg").Client) => Promise<T>): Promise<T> {
    const { default: pgClient } = await import("pg");
    const c = new pgClient.Client({ connectionString: url });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  /** A new database as the first release left it, with one chunk; its URL and the chunk's id. */
  async function firstSchemaDatabase(): Promise<{ url: string; id: Buffer }> {
    const url = await pg.createDatabase();
    const id = Buffer.alloc(32, 7);
    await onDatabase(url, async (c) => {
      for (const statement of MIGRATIONS[0] as readonly string[]) await c.query(statement);
      await c.query("CREATE TABLE tessera_schema (version integer NOT NULL)");
      await c.query("INSERT INTO tessera_schema (version) VALUES (1)");
      await c.query(
        "INSERT INTO chunks (store, id, pack, pos, length, flags, refs) VALUES ('local', $1, $2, 0, 10, 0, 1)",
        [id, Buffer.alloc(16, 1)],
      );
    });
    return { url, id };
  }

  it("refuses to migrate a database of an older schema unless allowed, naming the backup to take, changing nothing", async () => {
    const { url } = await firstSchemaDatabase();
    try {
      await expect(PgCatalog.open({ url })).rejects.toThrow(
        /schema is version 1, older than this Tessera's \d+: back it up \(tessera backup, or pg_dump\), then start once with --allow-migrate \(or "allowMigrate": true/,
      );
      await onDatabase(url, async (c) => {
        expect((await c.query("SELECT version FROM tessera_schema")).rows).toEqual([{ version: 1 }]);
        expect(
          (await c.query("SELECT indexname FROM pg_indexes WHERE indexname = 'chunks_by_id'")).rows,
        ).toEqual([]);
      });
    } finally {
      await pg.dropDatabase(url);
    }
  });

  it("migrates a database of the first schema at open when allowed, keeping its chunks, and adds the lookups' hash index", async () => {
    const { url, id } = await firstSchemaDatabase();
    const catalog = await PgCatalog.open({ url, allowMigrate: true });
    try {
      expect((await catalog.chunkIndex("local").lookup([id]))[0]).toMatchObject({
        offset: 0,
        length: 10,
        refs: 1,
      });
      await onDatabase(url, async (c) => {
        expect((await c.query("SELECT version FROM tessera_schema")).rows).toEqual([
          { version: SCHEMA_VERSION },
        ]);
        const idx = await c.query("SELECT indexdef FROM pg_indexes WHERE indexname = 'chunks_by_id'");
        expect(idx.rows[0]?.indexdef).toContain("USING hash (id)");
      });
    } finally {
      await catalog.close();
      await pg.dropDatabase(url);
    }
  });

  it("refuses a database whose schema is newer than this code, changing nothing", async () => {
    const url = await pg.createDatabase();
    await (await PgCatalog.open({ url })).close();
    await onDatabase(url, (c) => c.query("UPDATE tessera_schema SET version = $1", [SCHEMA_VERSION + 1]));
    try {
      await expect(PgCatalog.open({ url })).rejects.toThrow(/newer than this Tessera's/);
      await onDatabase(url, async (c) => {
        expect((await c.query("SELECT version FROM tessera_schema")).rows).toEqual([
          { version: SCHEMA_VERSION + 1 },
        ]);
      });
    } finally {
      await pg.dropDatabase(url);
    }
  });

  it("probes the hash index for each id of a batched lookup, in the prepared statement's generic plan", async () => {
    const url = await pg.createDatabase();
    const catalog = await PgCatalog.open({ url });
    try {
      const ids = await onDatabase(url, async (c) => {
        await c.query(
          `INSERT INTO chunks (store, id, pack, pos, length, flags, refs)
           SELECT 'local', decode(md5(i::text) || md5((i + 1)::text), 'hex'), decode(md5((i / 100)::text), 'hex'),
                  i * 10, 10, 0, 1 FROM generate_series(1, 20000) AS i`,
        );
        await c.query("ANALYZE chunks");
        const r = await c.query<{ id: Buffer }>("SELECT id FROM chunks ORDER BY pos LIMIT 512");
        return r.rows.map((row) => row.id);
      });
      expect((await catalog.chunkIndex("local").lookup(ids)).every((rec) => rec !== undefined)).toBe(true);
      const plan = await onDatabase(url, async (c) => {
        await c.query("SET plan_cache_mode = force_generic_plan");
        await c.query(`PREPARE lookup(text, bytea, integer, integer) AS ${LOOKUP_TEXT}`);
        const hex = Buffer.concat(ids).toString("hex");
        const r = await c.query(`EXPLAIN EXECUTE lookup('local', decode('${hex}', 'hex'), 32, 512)`);
        return r.rows.map((row) => row["QUERY PLAN"]).join("\n");
      });
      expect(plan).toContain("chunks_by_id");
    } finally {
      await catalog.close();
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
