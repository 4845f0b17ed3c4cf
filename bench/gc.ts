/**
 * `npm run bench:gc`: garbage collection of a store with about a million chunks, and what it
 * does to downloads running at the same time.
 *
 * A filesystem store with 4 KiB average chunks (so a million chunks fit in ~4 GiB) is filled
 * with `--objects` objects of random data; half of them are released; then downloads of a kept
 * object run back to back, first alone (the reference, same run), then while one collection
 * (grace 0) drops the dead half, deletes its packs and repacks nothing (the objects do not
 * share packs). Reported: chunks indexed, collection seconds, and the median download time
 * with and without the collection beside it.
 *
 *   --objects N   objects of --object-mb MiB each (default 64 × 64 MiB: ~1.05 million chunks)
 *   --dir DIR     scratch directory (default $TMPDIR/tessera-bench-gc)
 */
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chunkerForAverage } from "../src/chunker/params.js";
import { Engine } from "../src/engine/engine.js";
import { benchOnFreshEngine, log, median, timed } from "./common.js";

const { values: opt } = parseArgs({
  options: {
    objects: { type: "string", default: "64" },
    "object-mb": { type: "string", default: "64" },
    dir: { type: "string", default: join(tmpdir(), "tessera-bench-gc") },
  },
});
const MiB = 1024 * 1024;

async function* randomData(bytes: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes; at += MiB) yield randomBytes(Math.min(MiB, bytes - at));
}

async function downloadTimes(engine: Engine, id: string, until: () => boolean): Promise<number[]> {
  const times: number[] = [];
  do {
    const t = await timed(async () => {
      for await (const piece of engine.readPooled(id)) piece.release();
    });
    times.push(t.s);
  } while (!until());
  return times;
}

benchOnFreshEngine(
  opt.dir,
  (dir) => Engine.openDir(dir, { chunker: chunkerForAverage(4096) }),
  async (engine) => {
    const objects = Number(opt.objects);
    const size = Number(opt["object-mb"]) * MiB;
    const ids: string[] = [];
    const fill = await timed(async () => {
      for (let i = 0; i < objects; i++) ids.push((await engine.ingest(randomData(size))).manifestId);
    });
    let chunks = 0;
    for await (const _ of engine.store().index.scanChunks()) chunks++;
    log(`filled: ${objects} × ${size / MiB} MiB, ${chunks} chunks indexed, in ${fill.s.toFixed(1)} s`);
    for (let i = 1; i < objects; i += 2) await engine.release(ids[i] as string);
    const kept = ids[0] as string;

    // The reference: downloads alone, as many as fit in 10 s (at least 5).
    const started = Date.now();
    let n = 0;
    const alone = await downloadTimes(engine, kept, () => ++n >= 5 && Date.now() - started > 10_000);
    // The same downloads while one collection runs.
    let done = false;
    const gc = timed(() => engine.gc({ graceSeconds: 0 })).finally(() => {
      done = true;
    });
    const during = await downloadTimes(engine, kept, () => done);
    const { s: gcSeconds, value: report } = await gc;
    const row = {
      chunks,
      gcSeconds: Math.round(gcSeconds * 10) / 10,
      dropped: report.stores[0]?.chunksDropped,
      deletedMB: Math.round((report.stores[0]?.bytesDeleted ?? 0) / 1e6),
      downloadAloneMs: Math.round(median(alone) * 1000),
      downloadDuringGcMs: Math.round(median(during) * 1000),
      downloadsDuringGc: during.length,
      latencyRatio: Math.round((median(during) / median(alone)) * 100) / 100,
    };
    log(
      `gc of ${chunks} chunks (${row.dropped} dropped, ${row.deletedMB} MB deleted): ${row.gcSeconds} s; ` +
        `a ${size / MiB} MiB download: ${row.downloadAloneMs} ms alone, ${row.downloadDuringGcMs} ms during gc ` +
        `(median of ${alone.length} and ${during.length}): ×${row.latencyRatio}`,
    );
    return row;
  },
);
