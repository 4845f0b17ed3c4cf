/**
 * The node-local chunk cache in front of a remote store: a base image and an image derived from
 * it (the base with a few MiB rewritten, as a patched release is) uploaded to a Tessera whose
 * store is Ceph radosgw (.ci/ceph-rgw.sh), then the derived image downloaded with curl with
 * the cache cold (every chunk from radosgw), with only the base cached (what derived images
 * share), and warm; against the same downloads from a Tessera on a filesystem store, in the
 * same run. One worker each, so that the figures are the read path's, not the scheduler's.
 *
 *   npm run bench:cache -- [--image ../corpus/base.qcow2] [--rounds 3] [--s3rver]
 *                          [--read-check fast|full|off] [--compression zstd|none]
 *
 * Results: a log on stderr, one JSON object on the last line of stdout.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, open, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { log, median } from "./common.js";
import { type Target as S3Target, startRadosgw, startS3rver } from "./s3-servers.js";
import { download, peakRssMB, startTessera, type Target, upload } from "./targets.js";

const MB = 1e6;
const { values: opt } = parseArgs({
  options: {
    image: { type: "string", default: "../corpus/base.qcow2" },
    rounds: { type: "string", default: "3" },
    s3rver: { type: "boolean" },
    /** The remote store's readCheck and compression (default: a remote store's, full and zstd). */
    "read-check": { type: "string" },
    compression: { type: "string" },
  },
});
const rounds = Number(opt.rounds);
const r2 = (x: number) => Math.round(x * 100) / 100;

/** A copy of `base` with 8 MiB of new bytes in four places: most of its chunks are the base's. */
async function derive(base: string, out: string): Promise<void> {
  await copyFile(base, out);
  const size = (await stat(out)).size;
  const fh = await open(out, "r+");
  for (let k = 1; k <= 4; k++)
    await fh.write(randomBytes(2 * 1024 * 1024), 0, 2 * 1024 * 1024, Math.floor((size * k) / 5));
  await fh.close();
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

async function serve(dir: string, config: unknown): Promise<{ child: ChildProcess; t: Target }> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "config.json"), JSON.stringify(config));
  const s = await startTessera(join(dir, "data"), {
    args: ["--config", join(dir, "config.json"), "--workers", "1"],
    env: { TESSERA_GC_INTERVAL_SECONDS: "0", TESSERA_SCRUB_INTERVAL_SECONDS: "0" },
  });
  return { child: s.child, t: { name: dir, url: s.url } };
}

async function clearCache(t: Target): Promise<void> {
  const res = await fetch(`${t.url}/v2/cache`, { method: "DELETE" });
  if (res.status !== 204) throw new Error(`clearing the cache answered ${res.status}`);
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "tessera-bench-cache-"));
  let s3: S3Target | undefined;
  try {
    const base = opt.image;
    const derived = join(work, `derived.${base.split(".").pop()}`);
    await derive(base, derived);
    const size = (await stat(derived)).size;
    const results: Record<string, unknown> = { image: base, sizeMB: r2(size / MB), rounds };

    const fs = await serve(join(work, "fs"), {});
    await upload(fs.t, base, (await stat(base)).size);
    const fsDerived = await upload(fs.t, derived, size);
    await download(fs.t, fsDerived.id, size);
    const fsWarm: number[] = [];
    for (let i = 0; i < rounds; i++) fsWarm.push(await download(fs.t, fsDerived.id, size));
    results.filesystem = r2(median(fsWarm));
    log(`filesystem store, warm: ${results.filesystem} MB/s`);
    await stopChild(fs.child);

    s3 = opt.s3rver ? await startS3rver(work) : await startRadosgw(work);
    if (!s3) throw new Error("radosgw is not available (.ci/ceph-rgw.sh); --s3rver measures against s3rver");
    results.remote = s3.name;
    const cacheDir = join(work, "cache");
    const remote = await serve(join(work, "remote"), {
      stores: {
        remote: {
          ...s3.store,
          ...(opt["read-check"] ? { readCheck: opt["read-check"] } : {}),
          ...(opt.compression ? { compression: opt.compression } : {}),
        },
      },
      defaultStore: "remote",
      cache: { path: cacheDir, maxBytes: 8 * 1024 * 1024 * 1024 },
    });
    const baseUp = await upload(remote.t, base, (await stat(base)).size);
    const up = await upload(remote.t, derived, size);
    const cold: number[] = [];
    const baseOnly: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < rounds; i++) {
      await clearCache(remote.t);
      cold.push(await download(remote.t, up.id, size));
      await clearCache(remote.t);
      await download(remote.t, baseUp.id, (await stat(base)).size);
      baseOnly.push(await download(remote.t, up.id, size));
      warm.push(await download(remote.t, up.id, size));
    }
    Object.assign(results, {
      cold: r2(median(cold)),
      baseCached: r2(median(baseOnly)),
      warm: r2(median(warm)),
      warmVsFilesystem: r2(median(warm) / (results.filesystem as number)),
      coldVsFilesystem: r2(median(cold) / (results.filesystem as number)),
      peakRssMB: await peakRssMB(remote.child.pid as number),
    });
    const metrics = await (await fetch(`${remote.t.url}/metrics`)).text();
    results.cacheCounters = Object.fromEntries(
      metrics
        .split("\n")
        .filter((l) => /^tessera_cache_\w+ /.test(l))
        .map((l) => l.split(" ") as [string, string]),
    );
    log(`${s3.name}: cold ${results.cold}, base cached ${results.baseCached}, warm ${results.warm} MB/s`);
    log(`warm cache vs filesystem store: ×${results.warmVsFilesystem}`);
    await stopChild(remote.child);
    process.stdout.write(`${JSON.stringify(results)}\n`);
  } finally {
    await s3?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
