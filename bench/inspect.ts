/**
 * `npm run bench:inspect`: what format inspection costs an ingest. Each image is ingested
 * into a fresh store with and without the inspector tee, alternately, in the same run; the
 * figure is the median ratio of the two times. The detector alone is also timed against a
 * plain read of the same file. Packs are not fsynced, so that the CPU cost is not hidden
 * behind the disk (the worst case for the ratio).
 *
 *   --corpus DIR     OS disk images from scripts/make-corpus.sh (default ./corpus)
 *   --size-mb N      size of the random raw image also measured (default 1024)
 *   --rounds N       rounds per image; medians are reported (default 3)
 *   --dir DIR        scratch directory (default $TMPDIR/tessera-bench-inspect)
 */
import { existsSync } from "node:fs";
import { mkdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Engine } from "../src/engine/engine.js";
import { readFilePieces } from "../src/engine/file-source.js";
import { inspectAll, inspectStream } from "../src/formats/inspect-stream.js";
import { DEFAULT_FORMAT_POLICY } from "../src/formats/rules.js";
import { log, makeRandomFile, mbps, median, ratio, timed } from "./common.js";

const { values: opt } = parseArgs({
  options: {
    corpus: { type: "string", default: "./corpus" },
    "size-mb": { type: "string", default: "1024" },
    rounds: { type: "string", default: "3" },
    dir: { type: "string", default: join(tmpdir(), "tessera-bench-inspect") },
  },
});
const rounds = Number(opt.rounds);
const CORPUS: [string, string][] = [
  ["base.qcow2", "qcow2"],
  ["base.vmdk", "vmdk"],
  ["base.vhd", "vhd"],
  ["base.raw", "raw"],
];

async function ingestOnce(dir: string, file: string, format: string | undefined): Promise<number> {
  await rm(dir, { recursive: true, force: true });
  const engine = await Engine.openDir(dir, { durable: false });
  try {
    const source = format
      ? inspectStream(readFilePieces(file), format, DEFAULT_FORMAT_POLICY).pieces
      : readFilePieces(file);
    return (await timed(() => engine.ingest(source))).s;
  } finally {
    await engine.close();
  }
}

async function drain(file: string): Promise<void> {
  for await (const _ of readFilePieces(file));
}

async function measure(scratch: string, file: string, format: string) {
  const size = (await stat(file)).size;
  // The verdict first: the bench measures images the rules accept.
  const verdict = await inspectAll(readFilePieces(file), format, DEFAULT_FORMAT_POLICY);
  if (verdict.violations.length > 0) throw new Error(`${file}: ${JSON.stringify(verdict.violations)}`);
  const plain: number[] = [];
  const inspected: number[] = [];
  const read: number[] = [];
  const detect: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate which goes first, so drift in the machine's speed falls on both.
    const order = r % 2 === 0 ? [undefined, format] : [format, undefined];
    for (const f of order) (f ? inspected : plain).push(await ingestOnce(join(scratch, "store"), file, f));
    read.push((await timed(() => drain(file))).s);
    detect.push((await timed(() => inspectAll(readFilePieces(file), format, DEFAULT_FORMAT_POLICY))).s);
  }
  const row = {
    format: verdict.detection.format,
    virtualSize: verdict.detection.virtualSize,
    sizeMB: Math.round(size / 1e6),
    ingestMBps: mbps(size, median(plain)),
    ingestInspectedMBps: mbps(size, median(inspected)),
    /** Inspected ingest time over plain ingest time: 1.05 would be 5% more. */
    timeRatio: ratio(median(inspected), median(plain)),
    readMBps: mbps(size, median(read)),
    readInspectedMBps: mbps(size, median(detect)),
    /**
     * The detector's own time per byte (read + detect minus read) over the ingest's time per
     * byte: the same cost, measured where noise from the ingest's threads does not drown it.
     */
    detectShareOfIngest:
      Math.round((Math.max(0, median(detect) - median(read)) / median(plain)) * 1000) / 1000,
  };
  log(
    `${file.split("/").pop()?.padEnd(12)} ${row.format?.padEnd(5)} ${String(row.sizeMB).padStart(5)} MB: ingest ` +
      `${row.ingestMBps} MB/s, with inspection ${row.ingestInspectedMBps} MB/s (time ×${row.timeRatio}); ` +
      `read alone ${row.readMBps} MB/s, read + detect ${row.readInspectedMBps} MB/s ` +
      `(detection = ${(row.detectShareOfIngest * 100).toFixed(1)}% of ingest time)`,
  );
  return row;
}

async function main(): Promise<void> {
  const scratch = opt.dir;
  await mkdir(scratch, { recursive: true });
  const results: Record<string, unknown> = { rounds, fsync: false };
  const random = join(scratch, "random.raw");
  await makeRandomFile(random, Number(opt["size-mb"]) * 1024 * 1024);
  results.random = await measure(scratch, random, "raw");
  for (const [name, format] of CORPUS) {
    const file = join(opt.corpus, name);
    if (!existsSync(file)) {
      log(`${name}: not in ${opt.corpus}, not measured`);
      continue;
    }
    results[name] = await measure(scratch, file, format);
  }
  await rm(join(scratch, "store"), { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
