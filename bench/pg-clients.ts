/**
 * The two well-kept PostgreSQL clients on npm, `pg` (node-postgres) and `postgres`
 * (postgres.js), on the catalog's hot paths, against the same server in the same run:
 * - lookups: batches of 512 chunk ids answered by one query (an ingest's dedup check and a
 *   read's locate), the ids sent as one bytea the server cuts up, as the catalog does, among
 *   `--chunks` indexed chunks;
 * - commits: batches of 512 new chunk records inserted with one statement in a transaction
 *   (an ingest's commit), then deleted again.
 *
 *   npm run bench:pg-clients -- [--chunks 1000000] [--seconds 5] [--concurrency 4]
 *
 * Results: a log on stderr, one JSON object on the last line of stdout.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import postgres from "postgres";
import { log } from "./common.js";
import { startPostgres } from "./pg-server.js";

const { values: opt } = parseArgs({
  options: {
    chunks: { type: "string", default: "1000000" },
    seconds: { type: "string", default: "5" },
    concurrency: { type: "string", default: "4" },
  },
});
const N = Number(opt.chunks);
const SECONDS = Number(opt.seconds);
const CONCURRENCY = Number(opt.concurrency);
const BATCH = 512;

/** Chunk i's id, as the table was filled: md5(i) ‖ md5(i+1), 32 bytes. */
function idOf(i: number): Buffer {
  const a = createHash("md5").update(String(i)).digest();
  const b = createHash("md5")
    .update(String(i + 1))
    .digest();
  return Buffer.concat([a, b]);
}

function randomBatch(): Buffer[] {
  return Array.from({ length: BATCH }, () => idOf(1 + Math.floor(Math.random() * N)));
}

interface Client {
  lookup(ids: Buffer[]): Promise<number>;
  insert(ids: Buffer[]): Promise<void>;
  end(): Promise<void>;
}

/** The ids of a batch as one bytea, cut into 32-byte ids by the server (as chunk-index.ts does). */
const IDS =
  "(SELECT substring($IDS::bytea FROM i * 32 + 1 FOR 32) AS id FROM generate_series(0, length($IDS::bytea) / 32 - 1) AS i)";
const ids = (n: number) => IDS.replaceAll("$IDS", `$${n}`);
const LOOKUP = `SELECT c.id, pack, pos, length, flags, refs, sum FROM chunks c JOIN ${ids(2)} AS u ON c.store = $1 AND c.id = u.id`;
const INSERT = `INSERT INTO chunks (store, id, pack, pos, length, flags, refs, sum)
  SELECT 'bench', u.id, $2, 0, 65536, 0, 1, 42 FROM ${ids(1)} AS u`;
const DELETE = `DELETE FROM chunks c USING ${ids(1)} AS u WHERE c.store = 'bench' AND c.id = u.id`;

function nodePostgres(url: string): Client {
  const pool = new pg.Pool({ connectionString: url, max: CONCURRENCY });
  return {
    lookup: async (batch) => (await pool.query(LOOKUP, ["bench", Buffer.concat(batch)])).rowCount ?? 0,
    insert: async (batch) => {
      const c = await pool.connect();
      try {
        await c.query("BEGIN");
        await c.query(INSERT, [Buffer.concat(batch), randomBytes(16)]);
        await c.query(DELETE, [Buffer.concat(batch)]);
        await c.query("COMMIT");
      } finally {
        c.release();
      }
    },
    end: () => pool.end(),
  };
}

function postgresJs(url: string): Client {
  const sql = postgres(url, { max: CONCURRENCY });
  return {
    lookup: async (batch) => (await sql.unsafe(LOOKUP, ["bench", Buffer.concat(batch)])).length,
    insert: async (batch) => {
      await sql.begin(async (tx) => {
        await tx.unsafe(INSERT, [Buffer.concat(batch), randomBytes(16)]);
        await tx.unsafe(DELETE, [Buffer.concat(batch)]);
      });
    },
    end: () => sql.end(),
  };
}

/** Batches per second over SECONDS with CONCURRENCY callers. */
async function rate(op: () => Promise<unknown>): Promise<number> {
  const end = performance.now() + SECONDS * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        await op();
        n++;
      }
    }),
  );
  return n / SECONDS;
}

async function main(): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), "tessera-bench-pg-"));
  const server = await startPostgres(scratch);
  try {
    const url = await server.database("bench");
    const setup = new pg.Client({ connectionString: url });
    await setup.connect();
    await setup.query(`CREATE TABLE chunks (
      store text COLLATE "C" NOT NULL, id bytea NOT NULL, pack bytea NOT NULL, pos bigint NOT NULL,
      length integer NOT NULL, flags integer NOT NULL, refs integer NOT NULL, sum bigint,
      PRIMARY KEY (store, id))`);
    const began = performance.now();
    await setup.query(
      `INSERT INTO chunks SELECT 'bench', decode(md5(i::text) || md5((i + 1)::text), 'hex'),
         decode(md5(i::text), 'hex'), 0, 65536, 0, 1, 42 FROM generate_series(1, $1) AS i`,
      [N],
    );
    await setup.query("ANALYZE chunks");
    await setup.end();
    log(`${N} chunks indexed in ${((performance.now() - began) / 1000).toFixed(1)} s`);
    const results: Record<string, unknown> = { chunks: N, batch: BATCH, concurrency: CONCURRENCY };
    for (const [name, make] of [
      ["pg", nodePostgres],
      ["postgres", postgresJs],
    ] as const) {
      const c = make(url);
      if ((await c.lookup([idOf(1), idOf(2)])) !== 2) throw new Error(`${name}: lookups find nothing`);
      const lookups = await rate(() => c.lookup(randomBatch()));
      const inserts = await rate(() => c.insert(Array.from({ length: BATCH }, () => randomBytes(32))));
      await c.end();
      results[name] = {
        lookupBatchesPerSecond: Math.round(lookups),
        chunkLookupsPerSecond: Math.round(lookups * BATCH),
        commitBatchesPerSecond: Math.round(inserts),
      };
      log(
        `${name}: ${Math.round(lookups * BATCH)} chunk lookups/s, ${Math.round(inserts)} commits of ${BATCH}/s`,
      );
    }
    process.stdout.write(`${JSON.stringify(results)}\n`);
  } finally {
    await server.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

await main();
