/**
 * `tessera catalog migrate`: moves the catalog between LMDB and PostgreSQL with the service
 * stopped, and checks the copy before it reports success (catalog/catalog-migrate.ts). The
 * source is left as it was: switching the configuration over is the operator's step, and the
 * old catalog stays to go back to until they remove it.
 *
 * --to URL: from the configured catalog (the data directory's LMDB one by default) into an
 *   empty PostgreSQL database (one transaction: a failed copy leaves it empty).
 * --from URL: from PostgreSQL into an empty LMDB catalog in the data directory, built beside
 *   it (catalog-migrating) and moved into place only once checked, so a failed copy leaves no
 *   half-made catalog where the service would open it.
 */
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Catalog } from "../../catalog/catalog.js";
import { CatalogNotEmptyError } from "../../catalog/catalog-copy.js";
import { migrateCatalog } from "../../catalog/catalog-migrate.js";
import { CopyMismatchError } from "../../catalog/copy-check.js";
import { LmdbCatalog } from "../../catalog/lmdb/lmdb-catalog.js";
import { openCatalog } from "../../catalog/open.js";
import { PgCatalog, redacted } from "../../catalog/pg/pg-catalog.js";
import type { ServerConfig } from "../../config/server-config.js";
import { lockDir } from "../../engine/dir-lock.js";
import { type Command, configOf, type Flags, print, UsageError } from "../command.js";
import { requireDataDir } from "../data-dir.js";
import { progress } from "../progress.js";

const PG_URL = /^postgres(ql)?:\/\//;

/** Where a data directory's LMDB catalog is (Engine.openDir), and where one is built first. */
const catalogDir = (dataDir: string) => join(dataDir, "catalog");
// No dot in it: lmdb-js takes a path with an extension for a file, not a directory.
const buildDir = (dataDir: string) => join(dataDir, "catalog-migrating");

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** The URL of --to or --from, whichever was given (exactly one must be). */
function direction(values: Flags): { to: string } | { from: string } {
  const { to, from } = values;
  if ((to === undefined) === (from === undefined)) {
    throw new UsageError("catalog migrate needs one of --to postgres://... or --from postgres://...");
  }
  const url = (to ?? from) as string;
  if (!PG_URL.test(url))
    throw new UsageError(`--${to ? "to" : "from"} must be a postgres:// URL, not ${url}`);
  return to !== undefined ? { to } : { from: url };
}

/** Opens both ends, runs the migration with progress on stderr, closes both. */
async function migrate(source: Catalog, target: Catalog, names: { source: string; target: string }) {
  const bar = progress("items");
  try {
    const report = await migrateCatalog(source, target, names, bar.update);
    return { from: names.source, to: names.target, ...report };
  } finally {
    bar.stop();
  }
}

/** --to: the configured catalog into PostgreSQL. */
async function toPostgres(cfg: ServerConfig, url: string): Promise<void> {
  const fromLmdb = cfg.catalog.type === "lmdb";
  if (!fromLmdb && cfg.catalog.type === "postgres" && cfg.catalog.url === url) {
    throw new UsageError("--to names the database the configured catalog already is");
  }
  if (fromLmdb) await requireDataDir(cfg);
  // The LMDB catalog is the data directory's: no server may write it during the copy.
  const unlock = fromLmdb ? await lockDir(cfg.dataDir) : async () => {};
  try {
    const source = await openCatalog(catalogDir(cfg.dataDir), cfg.catalog);
    try {
      const target = await PgCatalog.open({ url });
      try {
        const sourceName = fromLmdb
          ? `LMDB ${resolve(catalogDir(cfg.dataDir))}`
          : "the configured PostgreSQL";
        const names = { source: sourceName, target: `PostgreSQL ${redacted(url)}` };
        print(
          await migrate(source, target, names).catch((e: unknown) => {
            // The copy was committed before the check found it wrong: say what to do with it.
            if (e instanceof CopyMismatchError) e.message += `; the copy stays in ${names.target}: drop it`;
            throw e;
          }),
        );
      } finally {
        await target.close();
      }
    } finally {
      await source.close();
    }
  } finally {
    await unlock();
  }
}

/** --from: PostgreSQL into an empty LMDB catalog in the data directory. */
async function fromPostgres(cfg: ServerConfig, url: string): Promise<void> {
  await mkdir(cfg.dataDir, { recursive: true });
  const unlock = await lockDir(cfg.dataDir);
  const final = catalogDir(cfg.dataDir);
  const build = buildDir(cfg.dataDir);
  const targetName = `LMDB ${resolve(final)}`;
  try {
    // A catalog already there must be empty (one opened and never written); refused otherwise.
    let emptyThere = false;
    if (await exists(join(final, "data.mdb"))) {
      const there = new LmdbCatalog(final);
      emptyThere = await there.isEmpty().finally(() => there.close());
      if (!emptyThere) throw new CatalogNotEmptyError(targetName);
    }
    await rm(build, { recursive: true, force: true }); // left by a copy that failed
    await mkdir(build);
    const source = await PgCatalog.open({ url });
    let done = false;
    try {
      const target = new LmdbCatalog(build);
      try {
        print(await migrate(source, target, { source: `PostgreSQL ${redacted(url)}`, target: targetName }));
        done = true;
      } finally {
        await target.close();
      }
    } finally {
      await source.close();
      if (!done) await rm(build, { recursive: true, force: true });
    }
    if (emptyThere) await rm(final, { recursive: true, force: true });
    await rename(build, final);
  } finally {
    await unlock();
  }
}

export const catalogCommand: Command = {
  name: "catalog",
  usage: `  tessera catalog migrate --to postgres://USER@HOST/DB [--data DIR] [--config FILE]
  tessera catalog migrate --from postgres://USER@HOST/DB [--data DIR]
                                              copy the whole catalog (--to: the data directory's
                                              LMDB one, or the configured one) into an empty
                                              PostgreSQL database, or (--from) back into an empty
                                              LMDB catalog in DIR; then check every record of the
                                              copy against its source (server stopped)`,
  async run({ arg, values }) {
    if (arg !== "migrate") {
      throw new UsageError(
        arg === undefined ? "catalog needs a subcommand: migrate" : `unknown catalog subcommand ${arg}`,
      );
    }
    const dir = direction(values);
    const cfg = configOf(values);
    if ("to" in dir) await toPostgres(cfg, dir.to);
    else await fromPostgres(cfg, dir.from);
  },
};
