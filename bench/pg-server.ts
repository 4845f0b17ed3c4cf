/**
 * A PostgreSQL (Debian's) for the benchmarks, on a loopback port in a scratch directory
 * (.ci/postgres.sh, which the tests use too).
 */
import { execFile } from "node:child_process";
import { chmod, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { freePort } from "./common.js";

const run = promisify(execFile);

export interface BenchPostgres {
  /** The URL of a new empty database named `name`. */
  database(name: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts a server in `scratch` (whose parents the "postgres" user must be able to traverse);
 * `sharedBuffers` (e.g. "4GB") sizes its cache as a production server's would be, instead of
 * PostgreSQL's default 128MB; `hugePages`: its buffers in huge pages (the host must have them:
 * `sysctl vm.nr_hugepages=N`, N 2 MiB pages a little above shared_buffers), as production
 * tuning has it: random index probes over gigabytes of 4 KiB pages miss the TLB at every step.
 */
export async function startPostgres(
  scratch: string,
  sharedBuffers?: string,
  hugePages = false,
): Promise<BenchPostgres> {
  const dir = join(scratch, "pg");
  await mkdir(dir, { recursive: true });
  await chmod(scratch, 0o755);
  const port = await freePort();
  const opts = [
    ...(sharedBuffers ? [`-c shared_buffers=${sharedBuffers}`] : []),
    ...(hugePages ? ["-c huge_pages=on"] : []),
  ];
  const env = { ...process.env, PG_OPTS: opts.join(" ") };
  await run("bash", [".ci/postgres.sh", "start", dir, String(port)], { env });
  const url = (db: string) => `postgres://tessera@127.0.0.1:${port}/${db}`;
  return {
    async database(name: string) {
      const c = new pg.Client({ connectionString: url("postgres") });
      await c.connect();
      await c.query(`CREATE DATABASE ${name}`);
      await c.end();
      return url(name);
    },
    stop: async () => {
      await run("bash", [".ci/postgres.sh", "stop", dir]);
    },
  };
}
