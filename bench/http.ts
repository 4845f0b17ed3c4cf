/**
 * HTTP benchmark: upload and download with curl against Tessera (`tessera serve`, the compiled
 * bin, fsync on) and against the real Glance (.ci/glance-peer.sh) in the same run, on
 * 1 GiB of random data and on a corpus image; the engine-level figures of the same bytes in
 * the same run, so the cost of the HTTP layer shows; the disk space each server uses for the
 * whole corpus; and listing latency over 10,000 images.
 *
 *   npm run bench:http -- [--rounds 3] [--size-mb 1024] [--corpus ./corpus] [--image base.qcow2]
 *                         [--glance URL | --glance-start PATH | --no-glance] [--list-images 10000]
 *
 * Without --glance, it starts Glance with .ci/glance-peer.sh when that
 * exists. Results: a log on stderr, one JSON object on the last line of stdout.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { Engine } from "../src/engine/engine.js";
import { readFilePieces } from "../src/engine/file-source.js";
import { makeRandomFile, median } from "./common.js";
import {
  download,
  peakRssMB,
  removeImage,
  startGlance,
  startTessera,
  type Target,
  upload,
} from "./targets.js";

const run = promisify(execFile);
const MB = 1e6;
const { values: opt } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    "size-mb": { type: "string", default: "1024" },
    corpus: { type: "string", default: "./corpus" },
    image: { type: "string", default: "base.qcow2" },
    glance: { type: "string" },
    "glance-start": { type: "string", default: ".ci/glance-peer.sh" },
    "no-glance": { type: "boolean" },
    "list-images": { type: "string", default: "10000" },
  },
});
const rounds = Number(opt.rounds);
const log = (s: string) => process.stderr.write(`${s}\n`);
const r2 = (x: number) => Math.round(x * 100) / 100;

async function du(path: string): Promise<number> {
  const { stdout } = await run("du", ["-sb", path]);
  return Number(stdout.split("\t")[0]);
}

async function engineFigures(file: string, size: number): Promise<{ ingest: number; read: number }> {
  const dir = await mkdtemp(join(tmpdir(), "tessera-bench-engine-"));
  try {
    const engine = await Engine.openDir(dir);
    let t = performance.now();
    const r = await engine.ingest(readFilePieces(file));
    const ingest = size / MB / ((performance.now() - t) / 1000);
    // Best of two reads, as for the HTTP downloads: the page cache warm, as a served image's is.
    let read = 0;
    for (let i = 0; i < 2; i++) {
      t = performance.now();
      for await (const piece of engine.readPooled(r.manifestId)) piece.release();
      read = Math.max(read, size / MB / ((performance.now() - t) / 1000));
    }
    await engine.close();
    return { ingest, read };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function listing(t: Target, n: number): Promise<Record<string, number>> {
  log(`listing: creating ${n} images`);
  let made = 0;
  const worker = async () => {
    while (made < n) {
      made++;
      const res = await fetch(`${t.url}/v2/images`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: `list-${made % 1000}`, tags: [`t${made % 10}`], disk_format: "raw" }),
      });
      await res.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const out: Record<string, number> = {};
  for (const [label, q] of [
    ["defaultPageMs", ""],
    ["sortNamePageMs", "?sort=name:asc&limit=100"],
    ["filterTagScanMs", "?tag=t3&limit=1000"],
    ["filterNameScanMs", "?name=list-7"],
    ["limit1000Ms", "?limit=1000"],
  ] as const) {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const res = await fetch(`${t.url}/v2/images${q}`);
      await res.arrayBuffer();
      times.push(performance.now() - t0);
    }
    out[label] = r2(median(times));
    log(`listing ${n} images: GET /v2/images${q} ${out[label]} ms`);
  }
  return out;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "tessera-bench-http-"));
  const size = Number(opt["size-mb"]) * 1024 * 1024;
  const randomFile = join(work, "random.bin");
  await makeRandomFile(randomFile, size);
  const tdata = join(work, "tessera");
  const tess = await startTessera(tdata);
  const gdir = join(work, "glance");
  const glance = opt["no-glance"]
    ? undefined
    : opt.glance
      ? { url: opt.glance, stop: async () => {} }
      : await startGlance(gdir, opt["glance-start"]);
  // A second server with verifyOnRead off, for the random data only: what verification costs.
  const tessNoVerify = await startTessera(join(work, "tessera-noverify"), {
    env: { TESSERA_VERIFY_ON_READ: "false" },
  });
  const targets: Target[] = [{ name: "tessera", url: tess.url }];
  if (glance) targets.push({ name: "glance", url: glance.url });
  const results: Record<string, unknown> = {
    command: `npm run bench:http -- ${process.argv.slice(2).join(" ")}`.trim(),
  };
  try {
    const corpusImage = join(opt.corpus, opt.image);
    const files: [string, string][] = [["random", randomFile]];
    if (existsSync(corpusImage)) files.push([opt.image, corpusImage]);
    else log(`${corpusImage} not found: corpus figures not measured (build it with scripts/make-corpus.sh)`);

    for (const [label, file] of files) {
      const bytes = (await stat(file)).size;
      const per: Record<string, { up: number[]; down: number[] }> = {};
      const eng = { ingest: [] as number[], read: [] as number[] };
      const runTargets =
        label === "random" ? [...targets, { name: "tesseraNoVerify", url: tessNoVerify.url }] : targets;
      for (let i = 0; i < rounds; i++) {
        for (const t of runTargets) {
          per[t.name] ??= { up: [], down: [] };
          const up = await upload(t, file, bytes);
          const downs = [await download(t, up.id, bytes), await download(t, up.id, bytes)];
          per[t.name].up.push(up.mbps);
          per[t.name].down.push(Math.max(...downs));
          await removeImage(t, up.id);
        }
        const e = await engineFigures(file, bytes);
        eng.ingest.push(e.ingest);
        eng.read.push(e.read);
        log(
          `${label} round ${i + 1}/${rounds}: ` +
            targets
              .map(
                (t) =>
                  `${t.name} up ${per[t.name].up[i].toFixed(0)} down ${per[t.name].down[i].toFixed(0)} MB/s`,
              )
              .join(", ") +
            `; engine ingest ${e.ingest.toFixed(0)} read ${e.read.toFixed(0)} MB/s`,
        );
      }
      const tUp = median(per.tessera.up);
      const tDown = median(per.tessera.down);
      const entry: Record<string, number | null> = {
        bytes,
        tesseraUploadMBps: r2(tUp),
        tesseraDownloadMBps: r2(tDown),
        engineIngestMBps: r2(median(eng.ingest)),
        engineReadMBps: r2(median(eng.read)),
        uploadOverEngine: r2(tUp / median(eng.ingest)),
        downloadOverEngine: r2(tDown / median(eng.read)),
        glanceUploadMBps: null,
        glanceDownloadMBps: null,
        uploadOverGlance: null,
        downloadOverGlance: null,
      };
      if (per.tesseraNoVerify) {
        entry.tesseraNoVerifyDownloadMBps = r2(median(per.tesseraNoVerify.down));
        if (per.glance)
          entry.noVerifyDownloadOverGlance = r2(median(per.tesseraNoVerify.down) / median(per.glance.down));
      }
      if (per.glance) {
        entry.glanceUploadMBps = r2(median(per.glance.up));
        entry.glanceDownloadMBps = r2(median(per.glance.down));
        entry.uploadOverGlance = r2(tUp / median(per.glance.up));
        entry.downloadOverGlance = r2(tDown / median(per.glance.down));
      }
      results[label] = entry;
      log(`${label}: ${JSON.stringify(entry)}`);
    }

    if (existsSync(opt.corpus)) {
      const names = (await readdir(opt.corpus)).filter((n) => /\.(raw|qcow2|vmdk|vhd)$/.test(n)).sort();
      // A fresh Tessera store (the rounds above left chunks behind: deleted images' chunks wait
      // for GC), and Glance's growth (it deletes files at once).
      const cdata = join(work, "tessera-corpus");
      const tessCorpus = await startTessera(cdata);
      const corpusTargets = [{ name: "tessera", url: tessCorpus.url }, ...targets.slice(1)];
      const before = glance && !opt.glance ? await du(join(gdir, "images")) : 0;
      let ingested = 0;
      for (const name of names) {
        const file = join(opt.corpus, name);
        const bytes = (await stat(file)).size;
        ingested += bytes;
        for (const t of corpusTargets) await upload(t, file, bytes);
        log(
          `corpus: uploaded ${name} (${(bytes / MB).toFixed(0)} MB) to ${targets.map((t) => t.name).join(" and ")}`,
        );
      }
      const space: Record<string, number | null> = {
        corpusBytes: ingested,
        tesseraDiskBytes: await du(cdata),
        glanceDiskBytes: glance && !opt.glance ? (await du(join(gdir, "images"))) - before : null,
      };
      // Peak memory of the server that took the whole corpus (9.6 GB here) over HTTP.
      space.tesseraCorpusServerPeakRssMB = await peakRssMB(tessCorpus.child.pid as number);
      tessCorpus.child.kill("SIGTERM");
      results.corpusSpace = space;
      log(`corpus space: ${JSON.stringify(space)}`);
    }

    results.tesseraServerPeakRssMB = await peakRssMB(tess.child.pid as number);
    log(`tessera server peak RSS after the rounds: ${results.tesseraServerPeakRssMB} MB`);
    const n = Number(opt["list-images"]);
    if (n > 0) results.listing = { images: n, ...(await listing(targets[0], n)) };
  } finally {
    tess.child.kill("SIGTERM");
    tessNoVerify.child.kill("SIGTERM");
    await glance?.stop();
    await rm(work, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

main().catch((e) => {
  log(String(e?.stack ?? e));
  process.exitCode = 1;
});
