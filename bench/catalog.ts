/**
 * The PostgreSQL catalog against LMDB, in the same run on the same machine:
 * - ingest of new random bytes over HTTP (curl), ingest of the same bytes again (a second image:
 *   every chunk found indexed), and download, a Tessera on each catalog (one worker, a
 *   filesystem store each), and one more on PostgreSQL that remembers no chunk location
 *   (every download asks the database, as a node's first download of another node's image
 *   does), rounds rotating which goes first;
 * - chunk lookups through the catalog's own ChunkIndex.lookup, in batches of `--batch`, at
 *   `--chunks` indexed chunks (filled with generate_series into the catalog's schema);
 * - listing: the first page of 25 images by created_at (scanImages + getImages) at `--images`.
 *
 *   npm run bench:catalog -- [--size-mb 1024] [--rounds 3] [--chunks 10000000] [--images 100000]
 *                            [--batch 512] [--seconds 5] [--shared-buffers 4GB] [--huge-pages] [--skip-http]
 *
 * Results: a log on stderr, one JSON object on the last line of stdout.
 */
import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { PgCatalog } from "../src/catalog/pg/pg-catalog.js";
import { log, makeRandomFile, median } from "./common.js";
import { startPostgres } from "./pg-server.js";
import { download, removeImage, startTessera, upload } from "./targets.js";

const { values: opt } = parseArgs({
  options: {
    "size-mb": { type: "string", default: "1024" },
    rounds: { type: "string", default: "3" },
    chunks: { type: "string", default: "10000000" },
    images: { type: "string", default: "100000" },
    seconds: { type: "string", default: "5" },
    /** Ids per lookup (the read path locates 512 at a time). */
    batch: { type: "string", default: "512" },
    /** PostgreSQL's shared_buffers (its default is 128MB; a production server gets ~25% of RAM). */
    "shared-buffers": { type: "string", default: "4GB" },
    /** PostgreSQL's buffers in huge pages (needs `sysctl vm.nr_hugepages`: pg-server.ts). */
    "huge-pages": { type: "boolean" },
    /** Only the lookups and the listing (no HTTP rounds). */
    "skip-http": { type: "boolean" },
  },
});
const r2 = (x: number) => Math.round(x * 100) / 100;
const BATCH = Number(opt.batch);

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

/** Upload and download MB/s of `file` on a Tessera whose catalog is `catalog`, per round. */
async function http(work: string, name: string, config: Record<string, unknown>, size: number) {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "config.json"), JSON.stringify(config));
  const s = await startTessera(join(dir, "data"), {
    args: ["--config", join(dir, "config.json"), "--workers", "1"],
    env: { TESSERA_GC_INTERVAL_SECONDS: "0", TESSERA_SCRUB_INTERVAL_SECONDS: "0" },
  });
  const t = { name, url: s.url };
  return {
    /**
     * One upload of `file` (new bytes to this server each round), a second image of the same
     * bytes (every chunk found indexed: what a base image uploaded again costs), a download.
     */
    async round(file: string): Promise<{ up: number; again: number; down: number }> {
      const u = await upload(t, file, size);
      const v = await upload(t, file, size);
      const down = await download(t, u.id, size);
      await removeImage(t, u.id);
      await removeImage(t, v.id);
      return { up: u.mbps, again: v.mbps, down };
    },
    stop: () => stopChild(s.child),
  };
}

/** `n` chunk records of store "bench" put straight into the catalog's table. */
async function fillChunks(url: string, n: number): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const step = 1_000_000;
  for (let from = 1; from <= n; from += step) {
    await c.query(
      `INSERT INTO chunks (store, id, pack, pos, length, flags, refs, sum)
       SELECT 'bench', decode(md5(i::text) || md5((i + 1)::text), 'hex'), decode(md5((i / 2000)::text), 'hex'),
              (i % 2000) * 65536, 65536, 4, 1, i FROM generate_series($1::bigint, $2::bigint) AS i`,
      [from, Math.min(n, from + step - 1)],
    );
  }
  // As autovacuum leaves a table that has been there a while: hint bits set, the visibility
  // map current (contains can answer from the index alone).
  await c.query("VACUUM ANALYZE chunks");
  // A serving catalog's index is in its cache: read it all in now rather than time the misses.
  await c.query("CREATE EXTENSION IF NOT EXISTS pg_prewarm");
  await c.query("SELECT pg_prewarm('chunks'), pg_prewarm('chunks_pkey')");
  await c.end();
}

/** `n` image records put straight into the catalog's table (ids and timestamps distinct). */
async function fillImages(url: string, n: number): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(
    `INSERT INTO images (id, record, owner, name, status, container_format, disk_format, size, created_at, updated_at)
     SELECT id, jsonb_build_object('id', id, 'name', 'img-' || i, 'status', 'active', 'visibility', 'public',
              'protected', false, 'os_hidden', false, 'owner', 'p' || (i % 50), 'disk_format', 'raw',
              'container_format', 'bare', 'min_disk', 0, 'min_ram', 0, 'size', i, 'virtual_size', null,
              'checksum', null, 'os_hash_algo', null, 'os_hash_value', null, 'created_at', ts, 'updated_at', ts,
              'tags', '[]'::jsonb, 'properties', '{}'::jsonb, 'object', null, 'stores', '[]'::jsonb),
            'p' || (i % 50), 'img-' || i, 'active', 'bare', 'raw', i, ts, ts
       FROM (SELECT i, md5(i::text) AS id,
                    to_char(timestamp '2026-01-01' + i * interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ts
               FROM generate_series(1, $1) AS i) AS g`,
    [n],
  );
  await c.query("ANALYZE images");
  await c.end();
}

function idOf(i: number): Buffer {
  const h = (x: number) => createHash("md5").update(String(x)).digest();
  return Buffer.concat([h(i), h(i + 1)]);
}

/** Calls of `op` per second over the bench's seconds, four callers at once. */
async function rate(op: () => Promise<unknown>): Promise<number> {
  const end = performance.now() + Number(opt.seconds) * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (performance.now() < end) {
        await op();
        n++;
      }
    }),
  );
  return n / Number(opt.seconds);
}

/** The HTTP rounds: upload and download on each catalog, alternating; their medians. */
async function httpRounds(
  server: Awaited<ReturnType<typeof startPostgres>>,
  work: string,
  results: Record<string, unknown>,
): Promise<void> {
  const file = join(work, "random.bin");
  const size = Number(opt["size-mb"]) * 1024 * 1024;
  const pgUrl = await server.database("http");
  const lmdb = await http(work, "lmdb", { catalog: { type: "lmdb" } }, size);
  const onPg = await http(work, "postgres", { catalog: { type: "postgres", url: pgUrl } }, size);
  // A node that remembers no chunk location: every download asks the database for all of them,
  // as a node's first download of an image another node uploaded does.
  const forgetful = await http(
    work,
    "postgres-uncached",
    { catalog: { type: "postgres", url: await server.database("uncached") }, locationCacheEntries: 0 },
    size,
  );
  const runs: Record<string, { up: number[]; again: number[]; down: number[] }> = {
    lmdb: { up: [], again: [], down: [] },
    postgres: { up: [], again: [], down: [] },
    "postgres-uncached": { up: [], again: [], down: [] },
  };
  for (let r = 0; r < Number(opt.rounds); r++) {
    // New random bytes each round: no round deduplicates against the one before (the chunks
    // of a deleted image stay indexed until a collection, and there is none here).
    await rm(file, { force: true });
    await makeRandomFile(file, size);
    // Each server goes first every third round: the ones after meet the first's writes still
    // being flushed to disk.
    const order = [
      ["lmdb", lmdb],
      ["postgres", onPg],
      ["postgres-uncached", forgetful],
    ] as const;
    for (const [name, s] of [...order.slice(r % 3), ...order.slice(0, r % 3)]) {
      const { up, again, down } = await s.round(file);
      runs[name]?.up.push(up);
      runs[name]?.again.push(again);
      runs[name]?.down.push(down);
      log(`  ${name}: upload ${up | 0}, again ${again | 0}, download ${down | 0} MB/s`);
    }
  }
  await lmdb.stop();
  await onPg.stop();
  await forgetful.stop();
  const fig = (k: string) => ({
    upload: r2(median(runs[k]?.up ?? [])),
    uploadAgain: r2(median(runs[k]?.again ?? [])),
    download: r2(median(runs[k]?.down ?? [])),
  });
  const [l, p, u] = [fig("lmdb"), fig("postgres"), fig("postgres-uncached")];
  results.http = {
    sizeMB: r2(size / 1e6),
    lmdb: l,
    postgres: p,
    postgresUncached: u,
    uploadRatio: r2(p.upload / l.upload),
    uploadAgainRatio: r2(p.uploadAgain / l.uploadAgain),
    downloadRatio: r2(p.download / l.download),
    downloadUncachedRatio: r2(u.download / l.download),
  };
  log(
    `ingest ×${r2(p.upload / l.upload)}, again ×${r2(p.uploadAgain / l.uploadAgain)}, ` +
      `download ×${r2(p.download / l.download)} (no location cache ×${r2(u.download / l.download)}) of LMDB`,
  );
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "tessera-bench-catalog-"));
  const server = await startPostgres(work, opt["shared-buffers"], opt["huge-pages"] === true);
  const results: Record<string, unknown> = {};
  try {
    if (!opt["skip-http"]) await httpRounds(server, work, results);
    const url = await server.database("scale");
    const cat = await PgCatalog.open({ url });
    const chunks = Number(opt.chunks);
    let began = performance.now();
    await fillChunks(url, chunks);
    log(`${chunks} chunks indexed in ${((performance.now() - began) / 1000).toFixed(0)} s`);
    const idx = cat.chunkIndex("bench");
    // Ids drawn beforehand (hashing them is not the catalog's cost), each batch a random run of them.
    const drawn = Array.from({ length: 200_000 }, () => idOf(1 + Math.floor(Math.random() * chunks)));
    const batch = () => {
      const at = Math.floor(Math.random() * (drawn.length - BATCH));
      return drawn.slice(at, at + BATCH);
    };
    const found = (await idx.lookup(batch())).filter(Boolean).length;
    if (found !== BATCH) throw new Error(`lookups found ${found} of ${BATCH}`);
    await rate(() => idx.lookup(batch())); // warm: a serving catalog's index is in its cache
    const lookups = await rate(() => idx.lookup(batch()));
    const contains = await rate(() => idx.contains(batch()));
    results.lookups = {
      chunks,
      batch: BATCH,
      lookupsPerSecond: Math.round(lookups * BATCH),
      containsPerSecond: Math.round(contains * BATCH),
    };
    log(
      `lookups at ${chunks} chunks: ${Math.round(lookups * BATCH)}/s (contains: ${Math.round(contains * BATCH)}/s)`,
    );

    const images = Number(opt.images);
    began = performance.now();
    await fillImages(url, images);
    log(`${images} images recorded in ${((performance.now() - began) / 1000).toFixed(0)} s`);
    const page = async () => {
      const ids: string[] = [];
      for await (const { id } of cat.records.scanImages("created_at", "desc")) {
        ids.push(id);
        if (ids.length === 25) break;
      }
      return cat.records.getImages(ids);
    };
    if ((await page()).filter(Boolean).length !== 25) throw new Error("a page has fewer than 25 images");
    const pages = await rate(page);
    results.listing = { images, pagesPerSecond: r2(pages) };
    log(`first page of 25 of ${images} images: ${r2(pages)} pages/s`);
    await cat.close();
    process.stdout.write(`${JSON.stringify(results)}\n`);
  } finally {
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
