/**
 * Peak memory of one ingest and one full read of a large file, in a process of its own so
 * that nothing else the benchmark holds is counted. Run by bench/run.ts:
 *   node dist/bench/rss.js FILE STORE_DIR   → prints {"peakRssMB":..,"ingestMBps":..,"readMBps":..}
 */
import { rm } from "node:fs/promises";
import { Engine } from "../src/engine/engine.js";
import { readFilePieces } from "../src/engine/file-source.js";

const [file, storeDir] = process.argv.slice(2);
await rm(storeDir, { recursive: true, force: true });
const engine = await Engine.openDir(storeDir);
try {
  const t0 = performance.now();
  const r = await engine.ingest(readFilePieces(file));
  const t1 = performance.now();
  let n = 0;
  for await (const b of engine.read(r.manifestId)) n += b.length;
  const t2 = performance.now();
  if (n !== r.size) throw new Error(`read ${n} bytes of ${r.size}`);
  process.stdout.write(
    `${JSON.stringify({
      peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
      bytes: r.size,
      ingestMBps: Math.round(r.size / 1e3 / (t1 - t0)),
      readMBps: Math.round(n / 1e3 / (t2 - t1)),
    })}\n`,
  );
} finally {
  await engine.close();
  await rm(storeDir, { recursive: true, force: true });
}
