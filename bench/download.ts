/**
 * Download benchmark: Tessera (`tessera serve`, the compiled bin) against the real Glance
 * (.ci/glance-peer.sh, file store) in the same run, with curl as the client, on 1 GiB of random
 * data and on a corpus image:
 *   - beside them, the ways Node itself can serve the same file (socket-writers.ts): the
 *     ceiling of the download path without the engine;
 *   - one download right after the upload (a boot storm follows a new image) and warm ones,
 *     for each read check (fast, full, off), one worker;
 *   - CONCURRENCY downloads at once: Tessera with 1 and with 2 workers against Glance with 2;
 *     peak RSS of each Tessera process;
 *   - with --profile, a CPU profile of a one-worker server during warm downloads (self time by
 *     function, the garbage collector's share).
 *
 *   npm run bench:download -- [--rounds 3] [--size-mb 1024] [--image ../corpus/base.qcow2]
 *                             [--concurrency 8] [--modes fast,full,off] [--no-glance] [--profile]
 *                             [--concurrent-only] [--concurrent-check fast|full|off]
 *
 * Results: a log on stderr, one JSON object on the last line of stdout.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { log, makeRandomFile, median } from "./common.js";
import { summarizeProfiles } from "./cpu-profile.js";
import { startWriter, type WriterName } from "./socket-writers.js";
import { curl, download, peakRssMB, startGlance, startTessera, type Target, upload } from "./targets.js";

const MB = 1e6;
const { values: opt } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    "size-mb": { type: "string", default: "1024" },
    image: { type: "string", default: "../corpus/base.qcow2" },
    concurrency: { type: "string", default: "8" },
    modes: { type: "string", default: "fast,full,off" },
    "glance-start": { type: "string", default: ".ci/glance-peer.sh" },
    "no-glance": { type: "boolean" },
    profile: { type: "boolean" },
    /** Only the downloads at once (no Node writers, no single downloads). */
    "concurrent-only": { type: "boolean" },
    /** The read check of the servers of the downloads at once. */
    "concurrent-check": { type: "string", default: "fast" },
  },
});
const rounds = Number(opt.rounds);
const r2 = (x: number) => Math.round(x * 100) / 100;
const results: Record<string, unknown> = { rounds, sizeMB: Number(opt["size-mb"]) };

interface Phases {
  upload: number;
  afterUpload: number;
  warm: number;
}

/** Upload, one download straight after, then the median of `rounds` warm downloads; MB/s. */
async function phases(t: Target, file: string): Promise<Phases & { id: string }> {
  const size = (await stat(file)).size;
  const up = await upload(t, file, size);
  const afterUpload = await download(t, up.id, size);
  const warm: number[] = [];
  for (let i = 0; i < rounds; i++) warm.push(await download(t, up.id, size));
  log(
    `  ${t.name} ${file}: upload ${up.mbps | 0}, after upload ${afterUpload | 0}, warm ${median(warm) | 0} MB/s`,
  );
  return { id: up.id, upload: r2(up.mbps), afterUpload: r2(afterUpload), warm: r2(median(warm)) };
}

/** `n` downloads of the same image at once; aggregate MB/s (all bytes over the wall time). */
async function concurrent(t: Target, id: string, size: number, n: number): Promise<number> {
  const runs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const began = performance.now();
    const all = await Promise.all(Array.from({ length: n }, () => curl([`${t.url}/v2/images/${id}/file`])));
    if (all.some((x) => x.code !== "200")) throw new Error(`${t.name}: a concurrent download failed`);
    runs.push((n * size) / MB / ((performance.now() - began) / 1000));
  }
  return r2(median(runs));
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

/** Peak RSS of a server's process and of its workers (its children), MB each. */
async function peaks(pid: number): Promise<number[]> {
  const { execFileSync } = await import("node:child_process");
  let kids: number[] = [];
  try {
    kids = execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" })
      .trim()
      .split("\n")
      .map(Number);
  } catch {}
  return Promise.all([pid, ...kids].map((p) => peakRssMB(p).catch(() => Number.NaN)));
}

async function tessera(
  work: string,
  name: string,
  readCheck: string,
  workers: number,
  nodeArgs: string[] = [],
) {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  const config = join(dir, "config.json");
  await writeFile(config, JSON.stringify({ stores: { local: { type: "filesystem", readCheck } } }));
  const s = await startTessera(join(dir, "data"), {
    args: ["--config", config, "--workers", String(workers)],
    env: { TESSERA_GC_INTERVAL_SECONDS: "0", TESSERA_SCRUB_INTERVAL_SECONDS: "0" },
    nodeArgs,
  });
  return { ...s, t: { name: `tessera ${readCheck} w${workers}`, url: s.url } };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "tessera-bench-download-"));
  try {
    const random = join(work, "random.bin");
    await makeRandomFile(random, Number(opt["size-mb"]) * 1024 * 1024);
    const files = [random, ...(existsSync(opt.image) ? [opt.image] : [])];
    if (files.length === 1) log(`${opt.image} not found: the corpus image is not measured`);
    const size = (await stat(random)).size;

    log("Node's own ways to serve the file (page cache), curl as client:");
    const writers: Record<string, number> = {};
    const writerNames: WriterName[] = opt["concurrent-only"]
      ? []
      : ["pipe", "http-pooled", "http-socket", "net-pooled"];
    for (const w of writerNames) {
      const s = await startWriter(w, random);
      await curl([s.url]);
      const runs: number[] = [];
      for (let i = 0; i < rounds; i++) runs.push(size / MB / (await curl([s.url])).seconds);
      writers[w] = r2(median(runs));
      log(`  ${w}: ${writers[w] | 0} MB/s`);
      await s.stop();
    }
    results.nodeWriters = writers;

    const glance =
      opt["no-glance"] || opt["concurrent-only"]
        ? undefined
        : await startGlance(join(work, "glance1"), opt["glance-start"], 1);
    const glanceFigures: Record<string, Phases> = {};
    if (glance) {
      for (const f of files) glanceFigures[f] = await phases({ name: "glance", url: glance.url }, f);
      await glance.stop();
    }
    results.glance = glanceFigures;

    const byMode: Record<string, Record<string, Phases & { vsGlance?: Partial<Phases> }>> = {};
    for (const mode of opt["concurrent-only"] ? [] : opt.modes.split(",")) {
      const s = await tessera(work, `t-${mode}`, mode, 1);
      byMode[mode] = {};
      for (const f of files) {
        const p = await phases(s.t, f);
        const g = glanceFigures[f];
        const vs = g && {
          upload: r2(p.upload / g.upload),
          afterUpload: r2(p.afterUpload / g.afterUpload),
          warm: r2(p.warm / g.warm),
        };
        byMode[mode][f] = { upload: p.upload, afterUpload: p.afterUpload, warm: p.warm, vsGlance: vs };
      }
      await stopChild(s.child);
    }
    results.tessera = byMode;

    const n = Number(opt.concurrency);
    log(`${n} downloads at once of ${(size / MB) | 0} MB:`);
    const conc: Record<string, unknown> = {};
    for (const workers of [1, 2]) {
      const s = await tessera(work, `c-w${workers}`, opt["concurrent-check"], workers);
      const up = await upload(s.t, random, size);
      conc[`tessera w${workers}`] = await concurrent(s.t, up.id, size, n);
      conc[`tessera w${workers} peak RSS MB`] = await peaks(s.child.pid as number);
      log(
        `  tessera w${workers}: ${conc[`tessera w${workers}`]} MB/s, RSS ${conc[`tessera w${workers} peak RSS MB`]}`,
      );
      await stopChild(s.child);
    }
    const g2 = opt["no-glance"]
      ? undefined
      : await startGlance(join(work, "glance2"), opt["glance-start"], 2);
    if (g2) {
      const t = { name: "glance w2", url: g2.url };
      const up = await upload(t, random, size);
      conc["glance w2"] = await concurrent(t, up.id, size, n);
      log(`  glance w2: ${conc["glance w2"]} MB/s`);
      await g2.stop();
      for (const w of [1, 2])
        conc[`tessera w${w} vs glance w2`] = r2(
          (conc[`tessera w${w}`] as number) / (conc["glance w2"] as number),
        );
    }
    results.concurrent = conc;

    if (opt.profile) {
      // Uploaded by a server without the profiler, so that the profile is of downloads alone.
      const profDir = join(work, "profile");
      const loader = await tessera(work, "prof", "fast", 1);
      const up = await upload(loader.t, random, size);
      await stopChild(loader.child);
      const s = await tessera(work, "prof", "fast", 1, ["--cpu-prof", "--cpu-prof-dir", profDir]);
      for (let i = 0; i < rounds; i++) await download(s.t, up.id, size);
      await stopChild(s.child);
      const summary = await summarizeProfiles(profDir);
      log(`profile: GC ${summary.gcPercent} % of busy time; top self time:`);
      for (const x of summary.top) log(`  ${String(x.percent).padStart(5)} %  ${x.fn}`);
      results.profile = summary;
    }
    process.stdout.write(`${JSON.stringify(results)}\n`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
