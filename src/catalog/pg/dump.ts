/**
 * A PostgreSQL catalog dumped and restored with PostgreSQL's own tools (`pg_dump`,
 * `pg_restore`, from the postgresql-client package), for `tessera backup` and `restore`. A
 * dump is one snapshot of the database (pg_dump reads in one repeatable-read transaction),
 * taken while the nodes go on writing.
 */
import { spawn } from "node:child_process";
import pg from "pg";
import { TesseraError } from "../../errors.js";
import { redacted } from "./pg-catalog.js";

/** pg_dump or pg_restore missing or failing. */
export class PgToolError extends TesseraError {
  constructor(message: string) {
    super("pg_tool", message);
  }
}

/** The URL without its password, and the password for PGPASSWORD: never on a command line (ps shows it). */
function connection(url: string): { url: string; env: NodeJS.ProcessEnv } {
  const u = new URL(url);
  const password = decodeURIComponent(u.password);
  u.password = "";
  return { url: u.toString(), env: password ? { ...process.env, PGPASSWORD: password } : process.env };
}

function runTool(program: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      err += d;
    });
    child.on("error", (e: NodeJS.ErrnoException) =>
      reject(
        new PgToolError(
          e.code === "ENOENT"
            ? `${program} is not installed (apt-get install postgresql-client)`
            : `${program}: ${e.message}`,
        ),
      ),
    );
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new PgToolError(`${program} exited with ${code}: ${err.trim()}`)),
    );
  });
}

/** Dumps the database at `url` into `file` (pg_dump's custom format, compressed). */
export async function dumpDatabase(url: string, file: string): Promise<void> {
  const c = connection(url);
  await runTool("pg_dump", ["--format=custom", "--file", file, "--dbname", c.url], c.env);
}

/**
 * Restores `file` into the database at `url`, in one transaction (a failure leaves it as it
 * was), owned by the URL's user whoever owned the dumped one.
 */
export async function restoreDatabase(url: string, file: string): Promise<void> {
  const c = connection(url);
  await runTool(
    "pg_restore",
    ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", "--dbname", c.url, file],
    c.env,
  );
}

async function onDatabase<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect().catch((e: unknown) => {
    throw new PgToolError(`cannot connect to ${redacted(url)}: ${(e as Error).message}`);
  });
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Whether the database has no table at all: the only kind a restore goes into. */
export function databaseIsBare(url: string): Promise<boolean> {
  return onDatabase(url, async (c) => {
    const r = await c.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
    );
    return Number(r.rows[0]?.n) === 0;
  });
}

/**
 * Forgets every lease of a restored database: they were the writes in progress of the nodes
 * that were dumped, which will never commit here, and alive they would hold the restored
 * uploads `saving` and every collection's deletions back until they lapsed.
 */
export function dropRestoredLeases(url: string): Promise<number> {
  return onDatabase(url, async (c) => (await c.query("DELETE FROM leases")).rowCount ?? 0);
}

/** The schema version recorded in the database (schema.ts). */
export function schemaVersionOf(url: string): Promise<number | undefined> {
  return onDatabase(url, async (c) => {
    const r = await c.query<{ version: number }>("SELECT version FROM tessera_schema").catch(() => undefined);
    return r?.rows[0]?.version;
  });
}
