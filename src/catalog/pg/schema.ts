/**
 * The PostgreSQL catalog's schema, as numbered migrations applied at open (migrate). A
 * database whose schema is newer than this code is refused: an older node must not write a
 * layout it does not know.
 *
 * Tables (every per-store table is keyed by store name first; text that is sorted or compared
 * is COLLATE "C", byte order, as LMDB orders keys, so listings page the same on both):
 *
 * | table       | key                | what                                                           |
 * | ----------- | ------------------ | -------------------------------------------------------------- |
 * | `meta`      | key                | JSON values: the store format, the layout, the sequence (`seq`) |
 * | `chunks`    | store, id          | the chunk index: pack, pos, length, flags, refs, sum (u64 as i64); hash index on id |
 * | `packs`     | store, id          | size, chunks, created_at, revived                              |
 * | `trash`     | store, name        | at, after, size, seq (store-index.ts TrashEntry)               |
 * | `condemned` | store, id          | out of the index by GC, still in pack at pos; seq, sum         |
 * | `manifests` | id                 | the binary manifest                                            |
 * | `objects`   | id                 | the ObjectRecord as JSON (stores: holders by store)            |
 * | `images`    | id                 | the ImageRecord as JSON, and a column per sort key              |
 * | `members`   | image_id, project  | the MemberRecord as JSON                                       |
 * | `usage`     | owner              | OwnerUsage as JSON ('' for no owner)                           |
 * | `tasks`     | id                 | the TaskRecord as JSON, image_id, created_at                   |
 * | `leases`    | id                 | the LeaseRecord as JSON                                        |
 * | `metadef_namespaces` | name      | a metadefs namespace whole, as `json` (key order kept)         |
 * | `metadef_resource_types` | name  | a metadefs resource type, as `json`                            |
 */
import { CatalogVersionError } from "../../errors.js";
import type { Sql } from "./sql.js";

/** Each migration's statements, in order; migration N takes the schema from version N-1 to N. */
export const MIGRATIONS: readonly (readonly string[])[] = [
  [
    `CREATE TABLE meta (key text COLLATE "C" PRIMARY KEY, value jsonb NOT NULL)`,
    `CREATE TABLE chunks (
       store text COLLATE "C" NOT NULL, id bytea NOT NULL, pack bytea NOT NULL, pos bigint NOT NULL,
       length integer NOT NULL, flags integer NOT NULL, refs integer NOT NULL, sum bigint,
       PRIMARY KEY (store, id))`,
    `CREATE INDEX chunks_by_pack ON chunks (store, pack)`,
    `CREATE TABLE packs (
       store text COLLATE "C" NOT NULL, id bytea NOT NULL, size bigint NOT NULL, chunks integer NOT NULL,
       created_at text NOT NULL, revived bigint, PRIMARY KEY (store, id))`,
    `CREATE TABLE trash (
       store text COLLATE "C" NOT NULL, name text COLLATE "C" NOT NULL, at bigint, after bigint NOT NULL,
       size bigint NOT NULL, seq bigint, PRIMARY KEY (store, name))`,
    `CREATE TABLE condemned (
       store text COLLATE "C" NOT NULL, id bytea NOT NULL, pack bytea NOT NULL, pos bigint NOT NULL,
       length integer NOT NULL, flags integer NOT NULL, seq bigint NOT NULL, sum bigint,
       PRIMARY KEY (store, id))`,
    `CREATE INDEX condemned_by_pack ON condemned (store, pack)`,
    `CREATE TABLE manifests (id bytea PRIMARY KEY, bytes bytea NOT NULL)`,
    `CREATE TABLE objects (id bytea PRIMARY KEY, record jsonb NOT NULL)`,
    `CREATE TABLE images (
       id text COLLATE "C" PRIMARY KEY, record jsonb NOT NULL, owner text COLLATE "C",
       name text COLLATE "C", status text COLLATE "C", container_format text COLLATE "C",
       disk_format text COLLATE "C", size bigint, created_at text COLLATE "C", updated_at text COLLATE "C")`,
    ...["name", "status", "container_format", "disk_format", "size", "created_at", "updated_at"].map(
      (k) => `CREATE INDEX images_by_${k} ON images (${k}, id)`,
    ),
    `CREATE TABLE members (
       image_id text COLLATE "C" NOT NULL, project text COLLATE "C" NOT NULL, record jsonb NOT NULL,
       PRIMARY KEY (image_id, project))`,
    `CREATE TABLE usage (owner text COLLATE "C" PRIMARY KEY, record jsonb NOT NULL)`,
    `CREATE TABLE tasks (
       id text COLLATE "C" PRIMARY KEY, image_id text COLLATE "C" NOT NULL, created_at text COLLATE "C" NOT NULL,
       record jsonb NOT NULL)`,
    `CREATE INDEX tasks_by_image ON tasks (image_id)`,
    `CREATE TABLE leases (id bigint PRIMARY KEY, record jsonb NOT NULL)`,
  ],
  [
    // The batched lookups' probes: a hash index finds an id in one bucket page where the
    // primary key descends four levels of a B-tree three times its size, comparing store and
    // id at each. At 10 million chunks, 4 callers, batches of 512: 161k lookups/s through the
    // primary key, 243-288k through this (256 MB against 731 MB), built in 12 s.
    `CREATE INDEX chunks_by_id ON chunks USING hash (id)`,
  ],
  [
    `CREATE TABLE metadef_namespaces (name text COLLATE "C" PRIMARY KEY, record json NOT NULL)`,
    `CREATE TABLE metadef_resource_types (name text COLLATE "C" PRIMARY KEY, record json NOT NULL)`,
  ],
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Arbitrary, fixed: the advisory lock that lets one node at a time migrate. */
const MIGRATION_LOCK = 0x7e55e2a0;

export class SchemaTooNewError extends CatalogVersionError {
  constructor(found: number) {
    super(
      `the catalog database's schema is version ${found}, newer than this Tessera's ${SCHEMA_VERSION}: upgrade Tessera`,
    );
  }
}

/** An older schema, and no word from the operator that it may be migrated. */
export class MigrationNotAllowedError extends CatalogVersionError {
  constructor(found: number) {
    super(
      `the catalog database's schema is version ${found}, older than this Tessera's ${SCHEMA_VERSION}: ` +
        'back it up (tessera backup, or pg_dump), then start once with --allow-migrate (or "allowMigrate": true in the catalog\'s configuration) to migrate it',
    );
  }
}

/**
 * What to do with an older schema: migrate it, refuse it, or leave it as it is (for a caller
 * that only reads and takes leases, which every schema has: tessera backup and restore).
 */
export type OlderSchema = "migrate" | "refuse" | "as-is";

/**
 * Brings the database's schema up to SCHEMA_VERSION, each migration in its own transaction
 * under an advisory lock (nodes starting together migrate once); refuses a newer schema, and
 * an older one as `older` says (a new database's schema is made without asking).
 */
export async function migrate(q: Sql, older: OlderSchema = "refuse"): Promise<void> {
  await q.query("BEGIN");
  try {
    await q.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await q.query("CREATE TABLE IF NOT EXISTS tessera_schema (version integer NOT NULL)");
    const r = await q.query<{ version: number }>("SELECT version FROM tessera_schema");
    let version = r.rows[0]?.version ?? 0;
    if (r.rows.length === 0) await q.query("INSERT INTO tessera_schema (version) VALUES (0)");
    if (version > SCHEMA_VERSION) throw new SchemaTooNewError(version);
    if (version > 0 && version < SCHEMA_VERSION && older !== "migrate") {
      if (older === "refuse") throw new MigrationNotAllowedError(version);
      version = SCHEMA_VERSION; // as it is
    }
    for (; version < SCHEMA_VERSION; version++) {
      for (const statement of MIGRATIONS[version] as readonly string[]) await q.query(statement);
      await q.query("UPDATE tessera_schema SET version = $1", [version + 1]);
    }
    await q.query("COMMIT");
  } catch (e) {
    await q.query("ROLLBACK");
    throw e;
  }
}
