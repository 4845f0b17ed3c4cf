/**
 * The metadata definitions in PostgreSQL: a namespace whole as one row, as in LMDB, and a
 * resource type as one row, each keyed by its name. The records are `json`, not `jsonb`: jsonb
 * reorders an object's keys, and a namespace's properties are shown in the order defined.
 */
import type { MetadefNamespaceRecord, MetadefResourceTypeRecord } from "../metadef-records.js";
import type { Sql } from "./sql.js";

/** One table of records keyed by name (table names are this module's constants). */
function named<T>(table: string) {
  return {
    async get(q: Sql, name: string): Promise<T | undefined> {
      const r = await q.query<{ record: T }>(`SELECT record FROM ${table} WHERE name = $1`, [name]);
      return r.rows[0]?.record;
    },
    async list(q: Sql): Promise<T[]> {
      const r = await q.query<{ record: T }>(`SELECT record FROM ${table} ORDER BY name`);
      return r.rows.map((row) => row.record);
    },
    async put(q: Sql, name: string, rec: T): Promise<void> {
      await q.query(
        `INSERT INTO ${table} (name, record) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record`,
        [name, JSON.stringify(rec)],
      );
    },
    async remove(q: Sql, name: string): Promise<void> {
      await q.query(`DELETE FROM ${table} WHERE name = $1`, [name]);
    },
  };
}

export const namespaces = named<MetadefNamespaceRecord>("metadef_namespaces");
export const resourceTypes = named<MetadefResourceTypeRecord>("metadef_resource_types");
