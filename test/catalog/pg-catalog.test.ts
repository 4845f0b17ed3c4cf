/** The PostgreSQL catalog against the catalog conformance suite, on a real PostgreSQL. */
import { afterAll, beforeAll, describe } from "vitest";
import { PgCatalog } from "../../src/catalog/pg/pg-catalog.js";
import { type Postgres, requirePostgres, startPostgres } from "../helpers/postgres.js";
import { runCatalogConformance } from "./catalog-conformance.js";

const run = requirePostgres("the PostgreSQL catalog's conformance");

describe.skipIf(!run)("the PostgreSQL catalog", () => {
  let pg: Postgres;
  beforeAll(async () => {
    pg = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await pg?.destroy();
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
