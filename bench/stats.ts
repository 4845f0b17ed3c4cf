/**
 * `npm run bench:stats`: what the dedup accounting costs with many images. A store gets
 * `--images` small objects (a shared 512 KiB head and 8 KiB of their own each), then the store
 * totals (`tessera stats`, GET /tessera/v1/stats) and one object's figures are timed.
 *
 *   --images N    default 100000
 *   --dir DIR     scratch directory (default $TMPDIR/tessera-bench-stats)
 */
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Engine } from "../src/engine/engine.js";
import { benchOnFreshEngine, log, median, timed } from "./common.js";

const { values: opt } = parseArgs({
  options: {
    images: { type: "string", default: "100000" },
    dir: { type: "string", default: join(tmpdir(), "tessera-bench-stats") },
  },
});

benchOnFreshEngine(
  opt.dir,
  (dir) => Engine.openDir(dir, { durable: false }),
  async (engine) => {
    const n = Number(opt.images);
    const head = randomBytes(512 * 1024);
    async function* image(): AsyncGenerator<Buffer> {
      yield head;
      yield randomBytes(8 * 1024);
    }
    let last = "";
    const fill = await timed(async () => {
      for (let i = 0; i < n; i++) {
        last = (await engine.ingest(image())).manifestId;
        if ((i + 1) % 10_000 === 0) log(`${i + 1} objects`);
      }
    });
    log(`filled: ${n} objects in ${fill.s.toFixed(0)} s`);
    const totals: number[] = [];
    let report = await engine.stats();
    for (let k = 0; k < 5; k++) {
      const t = await timed(() => engine.stats());
      totals.push(t.s);
      report = t.value;
    }
    const one: number[] = [];
    for (let k = 0; k < 5; k++) one.push((await timed(() => engine.objectStats(last))).s);
    const row = {
      objects: report.stores[0]?.objects,
      chunks: report.stores[0]?.chunks,
      dedupRatio: report.total.dedupRatio,
      storeTotalsMs: Math.round(median(totals) * 1000),
      oneObjectMs: Math.round(median(one) * 10000) / 10,
    };
    log(
      `stats of ${row.objects} objects, ${row.chunks} chunks: store totals ${row.storeTotalsMs} ms, ` +
        `one object ${row.oneObjectMs} ms (medians of 5)`,
    );
    return row;
  },
);
