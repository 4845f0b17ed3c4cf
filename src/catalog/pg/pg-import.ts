/**
 * Whole-catalog copies into PostgreSQL (CatalogCopy.importAll, ../catalog-copy.ts): into an
 * empty database, in one transaction, so a copy that fails leaves the database as empty as it
 * found it and can simply be run again. The tables are locked against writers first: a node
 * started on the database meanwhile waits for the copy instead of writing into it.
 *
 * Items come in batches; each run of one kind in a batch is one INSERT over arrays (unnest),
 * a round trip per few thousand rows. Manifests go one per statement, as binary parameters:
 * in an array they would travel as hex text, twice their size, and they are megabytes.
 */
import { TesseraError } from "../../errors.js";
import {
  batches,
  type CatalogItem,
  CatalogNotEmptyError,
  type ItemKind,
  type KindCounts,
  zeroCounts,
} from "../catalog-copy.js";
import { pgIsEmpty } from "./pg-copy.js";
import { type Sql, toI64 } from "./sql.js";

type ItemOf<K extends ItemKind> = Extract<CatalogItem, { kind: K }>;

/** A table's columns with their types, and an item's values in that order. */
interface Spec<K extends ItemKind> {
  table: string;
  columns: [name: string, type: string][];
  row(item: ItemOf<K>): unknown[];
}

const STORE_ID: [string, string][] = [
  ["store", "text"],
  ["id", "bytea"],
];

const SPECS: { [K in Exclude<ItemKind, "manifest">]: Spec<K> } = {
  meta: {
    table: "meta",
    columns: [
      ["key", "text"],
      ["value", "jsonb"],
    ],
    row: (i) => [i.key, JSON.stringify(i.value)],
  },
  chunk: {
    table: "chunks",
    columns: [
      ...STORE_ID,
      ["pack", "bytea"],
      ["pos", "bigint"],
      ["length", "integer"],
      ["flags", "integer"],
      ["refs", "integer"],
      ["sum", "bigint"],
    ],
    row: ({ store, id, rec }) => [
      store,
      id,
      rec.pack,
      rec.offset,
      rec.length,
      rec.flags,
      rec.refs,
      toI64(rec.sum),
    ],
  },
  pack: {
    table: "packs",
    columns: [
      ...STORE_ID,
      ["size", "bigint"],
      ["chunks", "integer"],
      ["created_at", "text"],
      ["revived", "bigint"],
    ],
    row: ({ store, id, rec }) => [store, id, rec.size, rec.chunks, rec.createdAt, rec.revived ?? null],
  },
  trash: {
    table: "trash",
    columns: [
      ["store", "text"],
      ["name", "text"],
      ["at", "bigint"],
      ["after", "bigint"],
      ["size", "bigint"],
      ["seq", "bigint"],
    ],
    row: ({ store, name, entry }) => [
      store,
      name,
      entry.at ?? null,
      entry.after,
      entry.size,
      entry.seq ?? null,
    ],
  },
  condemned: {
    table: "condemned",
    columns: [
      ...STORE_ID,
      ["pack", "bytea"],
      ["pos", "bigint"],
      ["length", "integer"],
      ["flags", "integer"],
      ["seq", "bigint"],
      ["sum", "bigint"],
    ],
    row: ({ store, id, rec }) => [
      store,
      id,
      rec.pack,
      rec.offset,
      rec.length,
      rec.flags,
      rec.seq,
      toI64(rec.sum),
    ],
  },
  object: {
    table: "objects",
    columns: [
      ["id", "bytea"],
      ["record", "jsonb"],
    ],
    row: ({ id, obj }) => [id, JSON.stringify(obj)],
  },
  image: {
    // The record as is, and the sort columns putImage (records.ts) derives from it.
    table: "images",
    columns: [
      ["id", "text"],
      ["record", "jsonb"],
      ["owner", "text"],
      ["name", "text"],
      ["status", "text"],
      ["container_format", "text"],
      ["disk_format", "text"],
      ["size", "bigint"],
      ["created_at", "text"],
      ["updated_at", "text"],
    ],
    row: ({ rec }) => [
      rec.id,
      JSON.stringify(rec),
      rec.owner,
      rec.name,
      rec.status,
      rec.container_format,
      rec.disk_format,
      rec.size,
      rec.created_at,
      rec.updated_at,
    ],
  },
  member: {
    table: "members",
    columns: [
      ["image_id", "text"],
      ["project", "text"],
      ["record", "jsonb"],
    ],
    row: ({ member: { image_id, member_id, ...rec } }) => [image_id, member_id, JSON.stringify(rec)],
  },
  task: {
    table: "tasks",
    columns: [
      ["id", "text"],
      ["image_id", "text"],
      ["created_at", "text"],
      ["record", "jsonb"],
    ],
    row: ({ task }) => [task.id, task.image_id, task.created_at, JSON.stringify(task)],
  },
  usage: {
    table: "usage",
    columns: [
      ["owner", "text"],
      ["record", "jsonb"],
    ],
    row: ({ owner, usage }) => [owner, JSON.stringify(usage)],
  },
  namespace: {
    table: "metadef_namespaces",
    columns: [
      ["name", "text"],
      ["record", "json"],
    ],
    row: ({ ns }) => [ns.namespace, JSON.stringify(ns)],
  },
  resource_type: {
    table: "metadef_resource_types",
    columns: [
      ["name", "text"],
      ["record", "json"],
    ],
    row: ({ rt }) => [rt.name, JSON.stringify(rt)],
  },
};

/** Every table the import writes, locked for its whole transaction. */
const TABLES = [...Object.values(SPECS).map((s) => s.table), "manifests", "leases"];

/** Inserts `run` (items of one kind) in one statement, its columns as arrays. */
async function insertRun(q: Sql, run: CatalogItem[]): Promise<void> {
  const first = run[0];
  if (!first) return;
  if (first.kind === "manifest") {
    for (const m of run as ItemOf<"manifest">[])
      await q.query("INSERT INTO manifests (id, bytes) VALUES ($1, $2)", [m.id, m.bytes]);
    return;
  }
  const spec = SPECS[first.kind] as Spec<ItemKind>;
  const columns: unknown[][] = spec.columns.map(() => []);
  for (const item of run) {
    const row = spec.row(item as never);
    for (let i = 0; i < row.length; i++) columns[i]?.push(row[i]);
  }
  await q.query(
    `INSERT INTO ${spec.table} (${spec.columns.map(([name]) => name).join(", ")})
     SELECT * FROM unnest(${spec.columns.map(([, type], i) => `$${i + 1}::${type}[]`).join(", ")})`,
    columns,
  );
}

/**
 * Writes `items` into the database of `q` (one client, no transaction open), which must be
 * empty; `where` names it in the refusal.
 */
export async function importPg(
  q: Sql,
  where: string,
  items: AsyncIterable<CatalogItem>,
  onItems?: (done: number) => void,
): Promise<KindCounts> {
  await q.query("BEGIN");
  try {
    // EXCLUSIVE: readers may read, no one else writes until the copy commits or rolls back.
    await q.query(`LOCK TABLE ${TABLES.join(", ")} IN EXCLUSIVE MODE`);
    if (!(await pgIsEmpty(q))) throw new CatalogNotEmptyError(where);
    const counts = zeroCounts();
    let done = 0;
    for await (const batch of batches(items)) {
      let run: CatalogItem[] = [];
      for (const item of batch) {
        if (item.kind === "meta" && item.key === "layout") continue; // LMDB's own (pg-copy.ts)
        if (run.length > 0 && run[0]?.kind !== item.kind) {
          await insertRun(q, run);
          run = [];
        }
        run.push(item);
        counts[item.kind]++;
      }
      await insertRun(q, run);
      done += batch.length;
      onItems?.(done);
    }
    await q.query("COMMIT");
    return counts;
  } catch (e) {
    await q.query("ROLLBACK").catch(() => {});
    if (e instanceof TesseraError) throw e;
    throw new TesseraError(
      "catalog_import",
      `the copy into ${where} failed, nothing was written: ${(e as Error).message}`,
      { cause: e },
    );
  }
}
