/**
 * Engine-level warm reads: each file ingested into a fresh store, then read back whole with
 * `readPooled` (the download path's read, pooled buffers, the store's read check) `--rounds`
 * times in one process; MB/s of each round and how long the first piece took.
 *
 *   node dist/bench/read-warm.js [--rounds 4] FILE...
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Engine } from "../src/engine/engine.js";
import { readFilePieces } from "../src/engine/file-source.js";
import { log } from "./common.js";

const { values: opt, positionals: files } = parseArgs({
  options: { rounds: { type: "string", default: "4" } },
  allowPositionals: true,
});
const dir = await mkdtemp(join(tmpdir(), "tessera-bench-read-"));
const engine = await Engine.openDir(dir, { durable: false });
const results: Record<string, number[]> = {};
try {
  for (const f of files) {
    const { manifestId } = await engine.ingest(readFilePieces(f));
    results[f] = [];
    for (let i = 0; i < Number(opt.rounds); i++) {
      const began = performance.now();
      let bytes = 0;
      let first = 0;
      for await (const p of engine.readPooled(manifestId, {})) {
        if (!first) first = performance.now() - began;
        bytes += p.bytes.length;
        p.release();
      }
      const mbps = Math.round(bytes / 1e3 / (performance.now() - began));
      results[f].push(mbps);
      log(`${f}: ${mbps} MB/s, first piece after ${first.toFixed(1)} ms`);
    }
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
} finally {
  await engine.close();
  await rm(dir, { recursive: true, force: true });
}
