/**
 * The per-chunk checksum candidates, measured before choosing one (src/hash/chunk-sum.ts):
 * each hashes the same 256 MiB of random data cut into chunks of the chunker's average size
 * (64 KiB) and into 4 MiB pieces, on the main thread, against BLAKE3 (the chunk id) in the
 * same run. Memory reads are part of every figure, as on the read path.
 *
 *   npm run bench:checksum -- [--mb 256] [--rounds 3]
 */
import { randomFillSync } from "node:crypto";
import { parseArgs } from "node:util";
import { crc32c } from "@node-rs/crc32";
import { xxh3, xxh64 } from "@node-rs/xxhash";
import { chunkId } from "../src/hash/chunk-id.js";
import { log, median } from "./common.js";

const { values: opt } = parseArgs({
  options: { mb: { type: "string", default: "256" }, rounds: { type: "string", default: "3" } },
});
const data = randomFillSync(Buffer.allocUnsafe(Number(opt.mb) * 1024 * 1024));
const candidates: [string, (b: Uint8Array) => unknown][] = [
  ["blake3 (chunk id)", (b) => chunkId(b)],
  ["xxh64", (b) => xxh64(b)],
  ["xxh3-64", (b) => xxh3.xxh64(b)],
  ["crc32c", (b) => crc32c(b)],
];

const results: Record<string, Record<string, number>> = {};
for (const size of [64 * 1024, 4 * 1024 * 1024]) {
  for (const [name, fn] of candidates) {
    const runs: number[] = [];
    for (let r = 0; r < Number(opt.rounds); r++) {
      const t = process.hrtime.bigint();
      for (let at = 0; at + size <= data.length; at += size) fn(data.subarray(at, at + size));
      runs.push(data.length / 1e6 / (Number(process.hrtime.bigint() - t) / 1e9));
    }
    const mbs = Math.round(median(runs));
    results[name] = { ...results[name], [`${size / 1024} KiB`]: mbs };
    log(`${name.padEnd(18)} ${String(size / 1024).padStart(5)} KiB pieces  ${mbs} MB/s`);
  }
}
process.stdout.write(`${JSON.stringify(results)}\n`);
