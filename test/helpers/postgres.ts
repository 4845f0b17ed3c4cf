/**
 * A real PostgreSQL (Debian's) for the tests, in a temp directory on a loopback port
 * (.ci/postgres.sh), and a fresh empty database per catalog. Skipped with a clear message where
 * PostgreSQL is not installed; in CI its absence fails.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { freePorts } from "./ports.js";

const run = promisify(execFile);
const SCRIPT = new URL("../../.ci/postgres.sh", import.meta.url).pathname;

export function havePostgres(): boolean {
  return existsSync("/usr/lib/postgresql") && readdirSync("/usr/lib/postgresql").length > 0;
}

/** Throws in CI, warns elsewhere, when PostgreSQL is missing; whether tests needing it run. */
export function requirePostgres(what: string): boolean {
  if (havePostgres()) return true;
  if (process.env.CI) throw new Error(`CI must have PostgreSQL (.ci/run installs it) for ${what}`);
  console.warn(`skipping ${what}: PostgreSQL is not installed (apt-get install postgresql)`);
  return false;
}

export interface Postgres {
  port: number;
  /** A new empty database; its URL. */
  createDatabase(): Promise<string>;
  dropDatabase(url: string): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and removes its directory. */
  destroy(): Promise<void>;
}

let made = 0;

export async function startPostgres(): Promise<Postgres> {
  const parent = await mkdtemp(join(tmpdir(), "tessera-pg-"));
  // mkdtemp makes 0700 folders; the server runs as "postgres" when the tests run as root.
  await chmod(parent, 0o755);
  const dir = join(parent, "pg");
  const port = await freePorts(1);
  const start = async () => {
    await run("bash", [SCRIPT, "start", dir, String(port)]);
  };
  const stop = async () => {
    await run("bash", [SCRIPT, "stop", dir]);
  };
  await run("mkdir", ["-p", dir]);
  await start();
  const url = (db: string) => `postgres://tessera@127.0.0.1:${port}/${db}`;
  const admin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: url("postgres") });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  return {
    port,
    async createDatabase() {
      const name = `t${process.pid}_${++made}`;
      await admin((c) => c.query(`CREATE DATABASE ${name}`));
      return url(name);
    },
    async dropDatabase(u: string) {
      const name = new URL(u).pathname.slice(1);
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
    stop,
    start,
    async destroy() {
      await stop();
      await rm(parent, { recursive: true, force: true });
    },
  };
}
