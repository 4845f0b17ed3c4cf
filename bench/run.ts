/**
 * `npm run bench`: the engine's speed and dedup, each speed as MB/s and as a ratio to a
 * reference measured in the same run on the same bytes. The last line printed is one JSON
 * object with every figure (docs/benchmarks.md records results).
 *
 *   --size-mb N        size of the random-data file (default 1024)
 *   --dir DIR          scratch directory (default $TMPDIR/tessera-bench)
 *   --corpus DIR       OS disk images from scripts/make-corpus.sh (default ./corpus)
 *   --chunker a,b,c    chunker min,avg,max in KiB (default 16,64,256)
 *   --pack-mb N        pack size in MiB (default: the engine's, 16)
 *   --no-fsync         do not fsync packs
 *   --rounds N         rounds of the random-data runs; medians are reported (default 5)
 *   --rss-gib N        size of the file for the peak-memory run (default 4; 0 skips it)
 *   --skip-random / --skip-corpus
 */

import { execFileSync } from "node:child_process";
import { createHash, randomFillSync } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Chunker } from "../src/chunker/chunker.js";
import { chunkLengthsJs } from "../src/chunker/cut-points-js.js";
import { type ChunkerParams, DEFAULT_CHUNKER_PARAMS } from "../src/chunker/params.js";
import { DEFAULT_PACK_SIZE, Engine } from "../src/engine/engine.js";
import { readFilePieces } from "../src/engine/file-source.js";
import { chunkId, chunkIdImplementation, chunkIdWasm } from "../src/hash/chunk-id.js";
import { log, makeRandomFile, mbps, median, ratio, timed } from "./common.js";

const MB = 1e6;
const MiB = 1024 * 1024;
const CORPUS_IMAGES = [
  "base.raw",
  "web.raw",
  "dev.raw",
  "base-v2.raw",
  "base.qcow2",
  "base.vmdk",
  "base.vhd",
];

const { values: opt } = parseArgs({
  options: {
    "size-mb": { type: "string", default: "1024" },
    dir: { type: "string", default: join(tmpdir(), "tessera-bench") },
    corpus: { type: "string", default: "./corpus" },
    chunker: { type: "string" },
    "pack-mb": { type: "string", default: String(DEFAULT_PACK_SIZE / (1024 * 1024)) },
    "no-fsync": { type: "boolean", default: false },
    "rss-gib": { type: "string", default: "4" },
    rounds: { type: "string", default: "5" },
    "skip-random": { type: "boolean", default: false },
    "skip-corpus": { type: "boolean", default: false },
  },
});
const chunker: ChunkerParams = opt.chunker
  ? (() => {
      const [min, avg, max] = opt.chunker.split(",").map((k) => Number(k) * 1024);
      return { min, avg, max };
    })()
  : DEFAULT_CHUNKER_PARAMS;
const engineOptions = {
  chunker,
  packSize: Number(opt["pack-mb"]) * MiB,
  durable: !opt["no-fsync"],
};
const results: Record<string, unknown> = {
  chunker,
  packMiB: Number(opt["pack-mb"]),
  fsync: !opt["no-fsync"],
  chunkIdImplementation,
};

const fileStream = (path: string) => createReadStream(path, { highWaterMark: MiB });

async function hashFile(path: string, algo: string): Promise<void> {
  const h = createHash(algo);
  for await (const b of fileStream(path)) h.update(b);
  h.digest();
}

async function drain(source: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const b of source) n += b.length;
  return n;
}

async function benchPrimitives(sample: Buffer): Promise<void> {
  const c = new Chunker(chunker);
  // Warm up: V8 runs WebAssembly in its baseline tier until the optimizing tier is ready.
  for (let i = 0; i < 8; i++) {
    c.push(sample.subarray(i * 4 * MiB, (i + 1) * 4 * MiB), () => {});
    chunkLengthsJs(sample.subarray(0, 4 * MiB), chunker);
  }
  c.finish(() => {});
  let chunks = 0;
  const wasm = await timed(() => {
    c.push(sample, () => chunks++);
    c.finish(() => chunks++);
  });
  const js = await timed(() => chunkLengthsJs(sample, chunker));
  const pieces: Buffer[] = [];
  for (let at = 0; at < sample.length; at += 64 * 1024) pieces.push(sample.subarray(at, at + 64 * 1024));
  const native = await timed(() => {
    for (const p of pieces) chunkId(p);
  });
  const wasmId = await timed(() => {
    for (const p of pieces) chunkIdWasm(p);
  });
  const sha = await timed(() => createHash("sha512").update(sample).digest());
  const md5 = await timed(() => createHash("md5").update(sample).digest());
  Object.assign(results, {
    chunkerWasmMBps: mbps(sample.length, wasm.s),
    chunkerJsMBps: mbps(sample.length, js.s),
    chunkIdNativeMBps: mbps(sample.length, native.s),
    chunkIdWasmMBps: mbps(sample.length, wasmId.s),
    md5MBps: mbps(sample.length, md5.s),
    sha512MBps: mbps(sample.length, sha.s),
    // The reference for the primitives: sha512 of the same bytes, Glance's default os_hash_algo.
    chunkerRatio: ratio(sample.length / wasm.s, sample.length / sha.s),
    chunkIdRatio: ratio(sample.length / native.s, sample.length / sha.s),
  });
  log(
    `primitives on ${sample.length / MiB} MiB in memory: chunker wasm ${results.chunkerWasmMBps} MB/s ` +
      `(x${results.chunkerRatio} of sha512; js ${results.chunkerJsMBps}), ` +
      `BLAKE3 64 KiB native ${results.chunkIdNativeMBps} MB/s (x${results.chunkIdRatio} of sha512; ` +
      `wasm ${results.chunkIdWasmMBps}), md5 ${results.md5MBps}, sha512 ${results.sha512MBps}; ` +
      `${chunks} chunks, mean ${Math.round(sample.length / chunks)} B`,
  );
}

/**
 * One round: the references and the engine's runs back to back on the same bytes, so that a
 * machine that is slower for a while is slower for both. The bench reports the median round.
 */
async function randomRound(file: string, size: number, storeDir: string) {
  const plainRead = await timed(() => drain(fileStream(file)));
  const md5 = await timed(() => hashFile(file, "md5"));
  const sha = await timed(() => hashFile(file, "sha512"));
  await rm(storeDir, { recursive: true, force: true });
  const engine = await Engine.openDir(storeDir, engineOptions);
  try {
    const ingNew = await timed(() => engine.ingest(readFilePieces(file)));
    const ingDup = await timed(() => engine.ingest(readFilePieces(file)));
    const id = ingNew.value.manifestId;
    // Packs are written with O_DIRECT, so the first read comes from the device, not the cache.
    // The second read of just-cached pages is measurably slower than later ones (1.7-1.8 vs
    // 2.2-2.8 GB/s here), so "warm" is the third read, like the reference file read many times.
    const cold = await timed(() => drain(engine.read(id)));
    const second = await timed(() => drain(engine.read(id)));
    const warm = await timed(() => drain(engine.read(id)));
    (engine as { verifyOnRead: boolean }).verifyOnRead = false;
    const noVerify = await timed(() => drain(engine.read(id)));
    (engine as { verifyOnRead: boolean }).verifyOnRead = true;
    const refIngest = mbps(size, md5.s + sha.s);
    const refRead = mbps(size, plainRead.s);
    return {
      engine,
      id,
      packs: ingNew.value.packsWritten,
      refIngestMBps: refIngest,
      refReadMBps: refRead,
      ingestNewMBps: mbps(size, ingNew.s),
      ingestNewRatio: ratio(mbps(size, ingNew.s), refIngest),
      ingestDupMBps: mbps(size, ingDup.s),
      ingestDupRatio: ratio(mbps(size, ingDup.s), refIngest),
      readColdMBps: mbps(size, cold.s),
      readSecondMBps: mbps(size, second.s),
      readMBps: mbps(size, warm.s),
      readRatio: ratio(mbps(size, warm.s), refRead),
      readNoVerifyMBps: mbps(size, noVerify.s),
    };
  } catch (e) {
    await engine.close();
    throw e;
  }
}

async function benchRandom(dir: string): Promise<void> {
  const size = Number(opt["size-mb"]) * MiB;
  const file = join(dir, `random-${opt["size-mb"]}MiB.bin`);
  await makeRandomFile(file, size);
  await drain(fileStream(file)); // warm the page cache

  const sample = Buffer.allocUnsafe(Math.min(size, 256 * MiB));
  const fh = await open(file, "r");
  await fh.read(sample, 0, sample.length, 0);
  await fh.close();
  await benchPrimitives(sample);

  const storeDir = join(dir, "store-random");
  const rounds: Awaited<ReturnType<typeof randomRound>>[] = [];
  const n = Number(opt.rounds);
  for (let i = 0; i < n; i++) {
    const r = await randomRound(file, size, storeDir);
    log(
      `round ${i + 1}/${n}: reference ${r.refIngestMBps} MB/s, ingest new ${r.ingestNewMBps} (x${r.ingestNewRatio}), ` +
        `already stored ${r.ingestDupMBps} (x${r.ingestDupRatio}), read warm ${r.readMBps} (x${r.readRatio})`,
    );
    if (i < n - 1) await r.engine.close();
    rounds.push(r);
  }
  const keys = [
    "refIngestMBps",
    "refReadMBps",
    "ingestNewMBps",
    "ingestNewRatio",
    "ingestDupMBps",
    "ingestDupRatio",
    "readColdMBps",
    "readSecondMBps",
    "readMBps",
    "readRatio",
    "readNoVerifyMBps",
  ] as const;
  results.randomMiB = size / MiB;
  results.rounds = n;
  for (const k of keys) results[k] = median(rounds.map((r) => r[k]));
  log(
    `median of ${n} rounds: reference (md5 then sha512 on one thread) ${results.refIngestMBps} MB/s, ` +
      `plain read of the cached file ${results.refReadMBps} MB/s`,
  );
  log(`ingest new ${results.ingestNewMBps} MB/s (x${results.ingestNewRatio}), ${rounds[0].packs} packs`);
  log(`ingest already stored ${results.ingestDupMBps} MB/s (x${results.ingestDupRatio})`);
  log(
    `full read, warm ${results.readMBps} MB/s (x${results.readRatio}), first read after ingest ` +
      `${results.readColdMBps} MB/s, second ${results.readSecondMBps} MB/s, ` +
      `without verification ${results.readNoVerifyMBps} MB/s`,
  );

  const { engine, id } = rounds[rounds.length - 1];
  try {
    const rng = new Uint32Array(4000);
    randomFillSync(rng);
    // Reference: the same ranges read from the cached file with positioned reads.
    const fileRanges = async (count: number, len: number, from: number) => {
      const fh = await open(file, "r");
      try {
        const buf = Buffer.allocUnsafe(len);
        for (let i = 0; i < count; i++) await fh.read(buf, 0, len, rng[from + i] % (size - len));
      } finally {
        await fh.close();
      }
    };
    const engineRanges = async (count: number, len: number, from: number) => {
      for (let i = 0; i < count; i++) {
        const start = rng[from + i] % (size - len);
        await drain(engine.read(id, { start, end: start + len }));
      }
    };
    const big = await timed(() => engineRanges(500, MiB, 0));
    const bigRef = await timed(() => fileRanges(500, MiB, 0));
    const small = await timed(() => engineRanges(2000, 4096, 2000));
    const smallRef = await timed(() => fileRanges(2000, 4096, 2000));
    Object.assign(results, {
      rangedRead1MiBMBps: mbps(500 * MiB, big.s),
      rangedRead1MiBRatio: ratio(bigRef.s, big.s),
      rangedRead4KiBPerSec: Math.round(2000 / small.s),
      rangedRead4KiBRatio: ratio(smallRef.s, small.s),
    });
    log(
      `ranged reads: 1 MiB at random offsets ${results.rangedRead1MiBMBps} MB/s ` +
        `(x${results.rangedRead1MiBRatio} of the same preads of the cached file), ` +
        `4 KiB at random offsets ${results.rangedRead4KiBPerSec}/s (x${results.rangedRead4KiBRatio})`,
    );
  } finally {
    await engine.close();
    await rm(storeDir, { recursive: true, force: true });
  }
}

async function benchCorpus(dir: string): Promise<void> {
  const missing = CORPUS_IMAGES.filter((f) => !existsSync(join(opt.corpus, f)));
  if (missing.length > 0) {
    log(
      `corpus: ${missing.join(", ")} missing in ${opt.corpus}; make it with ` +
        "`sudo apt-get install mmdebstrap e2fsprogs fdisk qemu-utils && " +
        "MIRROR=http://deb.debian.org/debian scripts/make-corpus.sh ./corpus` (about 4 minutes)",
    );
    return;
  }
  const zstd = await corpusRun(dir, "zstd", true);
  const plain = await corpusRun(dir, "none", false);
  const casync = casyncStored(dir);
  Object.assign(results, {
    corpusIngestedBytes: zstd.ingested,
    corpusStoredBytes: zstd.stored,
    corpusStoredBytesUncompressed: plain.stored,
    corpusCompressionRatio: ratio(plain.stored, zstd.stored),
    corpusDedupRatio: ratio(zstd.ingested, zstd.stored),
    corpusUniqueChunks: zstd.chunks,
    corpusIngestMBps: zstd.MBps,
    corpusIngestMBpsUncompressed: plain.MBps,
    corpusImages: zstd.perImage,
    casyncStoredBytes: casync ?? "not measured (casync not installed)",
    ...(casync ? { corpusStoredOverCasync: ratio(zstd.stored, casync) } : {}),
  });
  log(
    `corpus: ${(zstd.ingested / MB).toFixed(0)} MB ingested; stored ${(zstd.stored / MB).toFixed(1)} MB with zstd ` +
      `(${zstd.MBps} MB/s), ${(plain.stored / MB).toFixed(1)} MB without (${plain.MBps} MB/s): compression ` +
      `×${results.corpusCompressionRatio} on top of dedup; ${zstd.chunks} unique chunks` +
      (casync
        ? `; casync (zstd, same run) ${(casync / MB).toFixed(1)} MB: Tessera ÷ casync ×${results.corpusStoredOverCasync}`
        : "; casync not installed, not measured"),
  );
}

/** Ingests the corpus into a fresh store; the per-image lines are logged when `verbose`. */
async function corpusRun(dir: string, compression: "zstd" | "none", verbose: boolean) {
  const storeDir = join(dir, `store-corpus-${compression}`);
  await rm(storeDir, { recursive: true, force: true });
  const engine = await Engine.openDir(storeDir, { ...engineOptions, compression });
  let ingested = 0;
  let stored = 0;
  let seconds = 0;
  const perImage: Record<string, unknown>[] = [];
  try {
    for (const name of CORPUS_IMAGES) {
      const { s, value: r } = await timed(() => engine.ingest(readFilePieces(join(opt.corpus, name))));
      ingested += r.size;
      stored += r.bytesStored;
      seconds += s;
      perImage.push({
        image: name,
        bytes: r.size,
        new: r.bytesNew,
        stored: r.bytesStored,
        zero: r.zeroBytes,
        dedup: r.bytesDeduplicated,
        chunks: r.chunkCount,
        MBps: mbps(r.size, s),
      });
      if (verbose) {
        log(
          `corpus ${name.padEnd(12)} ${(r.size / MB).toFixed(0).padStart(6)} MB ingested, ` +
            `${(r.bytesNew / MB).toFixed(1).padStart(7)} MB new, ${(r.bytesStored / MB).toFixed(1).padStart(7)} MB stored, ` +
            `${(r.zeroBytes / MB).toFixed(0)} MB zero, ${mbps(r.size, s)} MB/s`,
        );
      }
    }
    let chunks = 0;
    for await (const _ of engine.store().index.scanChunks()) chunks++;
    return { ingested, stored, chunks, MBps: mbps(ingested, seconds), perImage };
  } finally {
    await engine.close();
    await rm(storeDir, { recursive: true, force: true });
  }
}

/** Bytes of casync's chunk store for the corpus (`casync make`, zstd), or undefined if not installed. */
function casyncStored(dir: string): number | undefined {
  try {
    execFileSync("casync", ["--version"], { stdio: "ignore" });
  } catch {
    return undefined;
  }
  const store = join(dir, "casync.castr");
  execFileSync("rm", ["-rf", store]);
  for (const name of CORPUS_IMAGES) {
    execFileSync(
      "casync",
      ["make", "--compression=zstd", `--store=${store}`, join(dir, `${name}.caibx`), join(opt.corpus, name)],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
  }
  const bytes = Number(
    execFileSync("du", ["-sb", "--apparent-size", store], { encoding: "utf8" }).split("\t")[0],
  );
  execFileSync("rm", ["-rf", store]);
  return bytes;
}

async function benchRss(dir: string): Promise<void> {
  const gib = Number(opt["rss-gib"]);
  if (!(gib > 0)) return;
  const file = join(dir, `random-${gib}GiB.bin`);
  await makeRandomFile(file, gib * 1024 * MiB);
  const script = new URL("./rss.js", import.meta.url).pathname;
  const out = execFileSync(process.execPath, [script, file, join(dir, "store-rss")], { encoding: "utf8" });
  const r = JSON.parse(out);
  Object.assign(results, { rssRunGiB: gib, peakRssMB: r.peakRssMB, rssRunIngestMBps: r.ingestMBps });
  log(
    `peak RSS of one process ingesting and then reading ${gib} GiB: ${r.peakRssMB} MB ` +
      `(ingest ${r.ingestMBps} MB/s, first read ${r.readMBps} MB/s)`,
  );
  await rm(file, { force: true });
}

const dir = opt.dir;
await mkdir(dir, { recursive: true });
if (!opt["skip-random"]) await benchRandom(dir);
if (!opt["skip-corpus"]) await benchCorpus(dir);
await benchRss(dir);
process.stdout.write(`${JSON.stringify(results)}\n`);
