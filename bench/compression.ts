/**
 * `npm run bench:compression`: what per-chunk compression costs on the way in and out, in one
 * run. (1) An OS disk image (default corpus/dev.raw) ingested into a fresh store and read back
 * warm, with compression "none" and "zstd", alternately; read speed is also given per byte of
 * non-zero data, the part that is stored. (2) Peak memory (VmHWM) of a fresh process that
 * ingests and then reads N GiB of all-new compressible data with zstd, for N = 1 and 4: it
 * should not grow with N.
 *
 *   --file PATH     the image for (1) (default ./corpus/dev.raw; skipped if missing)
 *   --rounds N      rounds of (1) (default 2)
 *   --dir DIR       scratch directory (default $TMPDIR/tessera-bench-compression)
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Engine } from "../src/engine/engine.js";
import { readFilePieces } from "../src/engine/file-source.js";
import { log, mbps, median, timed } from "./common.js";

const { values: opt } = parseArgs({
  options: {
    file: { type: "string", default: "./corpus/dev.raw" },
    rounds: { type: "string", default: "2" },
    dir: { type: "string", default: join(tmpdir(), "tessera-bench-compression") },
    "rss-child-gib": { type: "string" },
  },
});
const MiB = 1024 * 1024;

async function drain(source: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of source);
}

async function imageRun(file: string, compression: "none" | "zstd") {
  const dir = join(opt.dir, `store-${compression}`);
  await rm(dir, { recursive: true, force: true });
  const engine = await Engine.openDir(dir, { durable: false, compression });
  try {
    const ingest = await timed(() => engine.ingest(readFilePieces(file)));
    const r = ingest.value;
    await drain(engine.read(r.manifestId)); // warm the page cache
    const read = await timed(() => drain(engine.read(r.manifestId)));
    return {
      ingestMBps: mbps(r.size, ingest.s),
      readMBps: mbps(r.size, read.s),
      readNonZeroMBps: mbps(r.size - r.zeroBytes, read.s),
      storedMB: Math.round(r.bytesStored / 1e6),
    };
  } finally {
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** All-new, compressible: one text megabyte, stamped every 2 KiB so that no chunk repeats. */
async function* compressible(total: number): AsyncGenerator<Buffer> {
  const parts: string[] = [];
  for (let n = 0, len = 0; len < MiB; n++) {
    const w = `pkg-${(n * 2654435761) % 100003} v${n % 977} /usr/lib/x86_64/${n}\n`;
    parts.push(w);
    len += w.length;
  }
  const base = Buffer.from(parts.join("")).subarray(0, MiB);
  for (let made = 0, k = 0; made < total; made += MiB, k++) {
    const b = Buffer.from(base);
    for (let at = 0; at < b.length; at += 2048) b.writeUInt32LE((k * 512 + at) >>> 0, at);
    yield b;
  }
}

function vmHwmMB(): number {
  return Number(/VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1]) / 1024;
}

/** Runs in a child process of its own, so that its peak memory is its alone. */
async function rssChild(gib: number): Promise<void> {
  const dir = join(opt.dir, `rss-${gib}`);
  await rm(dir, { recursive: true, force: true });
  const engine = await Engine.openDir(dir, { durable: false, compression: "zstd" });
  const ingest = await timed(() => engine.ingest(compressible(gib * 1024 * MiB)));
  const afterIngest = vmHwmMB();
  const read = await timed(async () => {
    for await (const p of engine.readPooled(ingest.value.manifestId)) p.release();
  });
  const out = {
    gib,
    ingestMBps: mbps(ingest.value.size, ingest.s),
    readMBps: mbps(ingest.value.size, read.s),
    storedMB: Math.round(ingest.value.bytesStored / 1e6),
    peakRssAfterIngestMB: Math.round(afterIngest),
    peakRssAfterReadMB: Math.round(vmHwmMB()),
  };
  await engine.close();
  await rm(dir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

async function main(): Promise<void> {
  const results: Record<string, unknown> = {};
  if (existsSync(opt.file)) {
    const runs: Record<string, ReturnType<typeof imageRun> extends Promise<infer T> ? T[] : never> = {
      none: [],
      zstd: [],
    };
    for (let r = 0; r < Number(opt.rounds); r++) {
      for (const c of r % 2 === 0 ? (["none", "zstd"] as const) : (["zstd", "none"] as const)) {
        runs[c]?.push(await imageRun(opt.file, c));
      }
    }
    for (const [c, rs] of Object.entries(runs)) {
      const row = {
        ingestMBps: median(rs.map((x) => x.ingestMBps)),
        readMBps: median(rs.map((x) => x.readMBps)),
        readNonZeroMBps: median(rs.map((x) => x.readNonZeroMBps)),
        storedMB: rs[0]?.storedMB,
      };
      results[`image-${c}`] = row;
      log(
        `${opt.file} compression ${c.padEnd(4)}: ingest ${row.ingestMBps} MB/s, warm read ${row.readMBps} MB/s ` +
          `(${row.readNonZeroMBps} MB/s of non-zero data), ${row.storedMB} MB stored`,
      );
    }
  } else {
    log(`${opt.file} missing: image figures not measured`);
  }
  for (const gib of [1, 4]) {
    const r = spawnSync(
      process.execPath,
      [process.argv[1] as string, "--rss-child-gib", String(gib), "--dir", opt.dir],
      {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    const row = JSON.parse(r.stdout) as Record<string, number>;
    results[`compressible-${gib}GiB`] = row;
    log(
      `${gib} GiB all-new compressible, zstd: ingest ${row.ingestMBps} MB/s, read ${row.readMBps} MB/s, ` +
        `${row.storedMB} MB stored, peak RSS ${row.peakRssAfterIngestMB} MB after ingest, ${row.peakRssAfterReadMB} MB after read`,
    );
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

(opt["rss-child-gib"] ? rssChild(Number(opt["rss-child-gib"])) : main()).catch((e) => {
  console.error(e);
  process.exit(1);
});
