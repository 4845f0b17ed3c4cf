/**
 * Opens the catalog a configuration names: LMDB in a directory (the embedded default), or a
 * PostgreSQL database shared by the nodes of a cluster.
 */
import type { Catalog } from "./catalog.js";
import { LmdbCatalog } from "./lmdb/lmdb-catalog.js";
import { PgCatalog } from "./pg/pg-catalog.js";

export type CatalogConfig =
  | { type: "lmdb" }
  | {
      type: "postgres";
      /** postgres://user[:password]@host[:port]/database */
      url: string;
      /** Connections per process (default 10). */
      poolSize?: number;
      /**
       * Migrate an older schema at start (default false: refused, naming the backup to take
       * first; docs/operations.md, "Upgrading").
       */
      allowMigrate?: boolean;
    };

/**
 * `path`: the LMDB catalog's directory (unused by PostgreSQL). `options.node`: the node (a data
 * directory on a host) whose leases the catalog takes, so that the node, restarted, knows the
 * leases of its earlier life (images/abandoned-uploads.ts).
 */
export async function openCatalog(
  path: string,
  config: CatalogConfig = { type: "lmdb" },
  options: { durable?: boolean; node?: string } = {},
): Promise<Catalog> {
  if (config.type === "postgres") return PgCatalog.open({ ...config, node: options.node });
  return new LmdbCatalog(path, options);
}
