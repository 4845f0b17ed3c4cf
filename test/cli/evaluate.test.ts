/**
 * `tessera evaluate` on a small corpus the test builds: its JSON checked against figures the
 * test computes on its own (sizes from the files, chunks from the chunker, the sharing matrix
 * from chunk sets), peers measured or listed as not measured, an interrupted run resumed, and
 * the HTML report opened in headless Chromium (Debian's, driven by playwright-core) to check
 * that its charts rendered and read well (test/helpers/report-page.ts), with screenshots kept
 * under test-artifacts/. A corpus of symbolic links is followed to the images.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { chunkerForAverage } from "../../src/chunker/params.js";
import { type Report, renderReport } from "../../src/cli/evaluate/report.js";
import { chunkLengths } from "../helpers/chunks.js";
import { prng } from "../helpers/data.js";
import { expectReadableReport } from "../helpers/report-page.js";
import { runAsync } from "../helpers/run.js";
import { type S3rver, startS3rver } from "../helpers/s3.js";

const BIN = new URL("../../dist/src/cli/main.js", import.meta.url).pathname;
const ARTIFACTS = new URL("../../test-artifacts/", import.meta.url).pathname;
/** The sample report of docs/evaluation.md: ten configurations and peers, several close together. */
const SAMPLE = new URL("../../docs/evaluation/report.json", import.meta.url).pathname;
const CHROMIUM = "/usr/bin/chromium";
const MiB = 1024 * 1024;

let dir: string;
let corpus: string;
const files: Record<string, Buffer> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tessera-evaluate-"));
  corpus = join(dir, "corpus");
  await mkdir(corpus);
  const a = Buffer.from(prng(1, 4 * MiB));
  files["a.raw"] = a;
  files["b.raw"] = Buffer.concat([a, Buffer.from(prng(2, MiB))]);
  files["c.raw"] = Buffer.concat([
    a.subarray(0, 2 * MiB),
    Buffer.alloc(MiB / 2),
    Buffer.from(prng(3, 1.5 * MiB)),
  ]);
  for (const [name, data] of Object.entries(files)) await writeFile(join(corpus, name), data);
  // Notes beside the images are not images.
  await writeFile(join(corpus, "corpus.tsv"), "name\tbytes\n");
  await writeFile(
    join(dir, "configs.json"),
    JSON.stringify([
      { name: "16k", avgChunkKiB: 16 },
      { name: "64k-zstd", avgChunkKiB: 64, compression: "zstd", packSizeMiB: 4 },
    ]),
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function evaluate(out: string, extra: string[] = [], env: NodeJS.ProcessEnv = process.env, from = corpus) {
  return runAsync(
    process.execPath,
    [BIN, "evaluate", "--corpus", from, "--configs", join(dir, "configs.json"), "--out", out, ...extra],
    { env, timeout: 300_000 },
  );
}

/** The corpus as the test sees it: each image's chunks (zero chunks as "zero:<len>") at `avg`. */
function chunksOf(avg: number): Map<string, { key: string; len: number }[]> {
  const out = new Map<string, { key: string; len: number }[]>();
  for (const [name, data] of Object.entries(files)) out.set(name, chunkLengths(data, chunkerForAverage(avg)));
  return out;
}

describe("tessera evaluate", () => {
  let report: Report;
  let out: string;
  beforeAll(async () => {
    out = join(dir, "out");
    const r = await evaluate(out);
    expect(r.status, r.err).toBe(0);
    report = JSON.parse(await readFile(join(out, "report.json"), "utf8")) as Report;
  }, 300_000);

  test("the scratch stores are gone after the run; the results stay for a later run to resume from", async () => {
    expect(existsSync(join(out, "scratch"))).toBe(false);
    expect((await readdir(join(out, "results"))).sort()).toEqual(
      ["config-16k.json", "config-64k-zstd.json", ...report.peers.map((p) => `peer-${p.name}.json`)].sort(),
    );
  });

  test("a corpus of symbolic links is followed to its images; dangling links and links to directories are skipped", async () => {
    // Links named apart from their targets: the report names an image as the corpus does.
    const links = join(dir, "links");
    await mkdir(links);
    for (const name of Object.keys(files)) await symlink(join(corpus, name), join(links, `link-${name}`));
    await symlink(join(dir, "nowhere.raw"), join(links, "dangling.raw"));
    await symlink(corpus, join(links, "a-directory"));
    const linked = join(dir, "linked");
    const r = await evaluate(linked, [], process.env, links);
    expect(r.status, r.err).toBe(0);
    expect(r.err).toMatch(
      /skipping \S*dangling\.raw: a link to \S*nowhere\.raw, which cannot be read \(ENOENT\)/,
    );
    expect(r.err).toMatch(/skipping \S*a-directory: a link to \S*corpus, which is not a regular file/);
    const rep = JSON.parse(await readFile(join(linked, "report.json"), "utf8")) as Report;
    const names = Object.keys(files).map((n) => `link-${n}`);
    expect(rep.corpus.images).toEqual(
      names.map((name, i) => ({ name, bytes: report.corpus.images[i]?.bytes })),
    );
    expect(rep.analysis?.sharing).toEqual({ ...report.analysis?.sharing, images: names });
    for (const c of rep.configs) {
      expect(c.storedBytes).toBe(report.configs.find((x) => x.name === c.name)?.storedBytes);
    }
    // The peers read the images, not the links (restic and borg would store a link as a link: a
    // few hundred bytes). Their own metadata differs with the paths (restic's trees, measured
    // 10 % apart on these small images), so the bytes are compared loosely.
    for (const p of rep.peers.filter((x) => x.measured)) {
      const direct = report.peers.find((x) => x.name === p.name)?.storedBytes as number;
      expect(p.storedBytes as number, p.name).toBeGreaterThan(0.5 * direct);
      expect(p.storedBytes as number, p.name).toBeLessThan(1.5 * direct);
    }
  }, 300_000);

  test("the corpus, machine and command are recorded; notes beside the images are left out", () => {
    expect(report.corpus.images.map((i) => i.name)).toEqual(["a.raw", "b.raw", "c.raw"]);
    expect(report.corpus.totalBytes).toBe(Object.values(files).reduce((n, f) => n + f.length, 0));
    expect(report.command).toContain("evaluate --corpus");
    expect(report.machine.cpus).toBeGreaterThan(0);
    expect(report.tool.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  test("each configuration's stored bytes, chunks and dedup ratio match the test's own chunking", () => {
    const plain = report.configs.find((c) => c.name === "16k");
    if (!plain) throw new Error("no 16k result");
    // Without compression, stored bytes are the distinct non-zero chunks' lengths, each once.
    const distinct = new Map<string, number>();
    for (const list of chunksOf(16 * 1024).values()) {
      for (const c of list) if (!c.key.startsWith("zero:")) distinct.set(c.key, c.len);
    }
    const stored = [...distinct.values()].reduce((n, l) => n + l, 0);
    expect(plain.storedBytes).toBe(stored);
    expect(plain.chunks).toBe(distinct.size);
    expect(plain.logicalBytes).toBe(report.corpus.totalBytes);
    expect(plain.dedupRatio).toBeCloseTo(report.corpus.totalBytes / stored, 3);
    expect(plain.packBytes).toBeGreaterThan(stored);
    for (const c of report.configs) {
      expect(c.ingestMBps).toBeGreaterThan(0);
      expect(c.downloadMBps).toBeGreaterThan(0);
      expect(c.packs).toBeGreaterThan(0);
      expect(c.peakRssBytes).toBeGreaterThan(10 * MiB);
      expect(c.requests.puts).toBeGreaterThanOrEqual(c.packs);
    }
    // Random data does not compress: zstd stores it as it is (chunks stay raw when they do not shrink).
    const z = report.configs.find((c) => c.name === "64k-zstd");
    expect(z?.storedBytes).toBeLessThanOrEqual(stored + 64 * 1024);
  });

  test("the histogram and sharing matrix match the test's own chunk sets (64 KiB)", () => {
    const a = report.analysis;
    if (!a) throw new Error("no analysis");
    expect(a.config).toBe("64k-zstd");
    const chunks = chunksOf(64 * 1024);
    const all = [...chunks.values()].flat();
    expect(a.chunkSizes.counts.reduce((n, c) => n + c, 0)).toBe(all.length);
    const names = a.sharing.images;
    expect(names).toEqual(["a.raw", "b.raw", "c.raw"]);
    for (const [i, an] of names.entries()) {
      const have = new Set((chunks.get(an) ?? []).map((c) => c.key));
      for (const [j, bn] of names.entries()) {
        const b = chunks.get(bn) ?? [];
        const size = b.reduce((n, c) => n + c.len, 0);
        const present = b.filter((c) => have.has(c.key)).reduce((n, c) => n + c.len, 0);
        expect(a.sharing.matrix[i]?.[j], `${bn} in ${an}`).toBeCloseTo(present / size, 4);
      }
    }
    // b is a plus 1 MiB of its own: nearly all of a is in b, four fifths of b in a.
    expect(a.sharing.matrix[1]?.[0]).toBeGreaterThan(0.98);
    expect(a.sharing.matrix[0]?.[1]).toBeGreaterThan(0.75);
  });

  test("peers: each measured where installed, with its version; never an estimate", () => {
    expect(report.peers.map((p) => p.name)).toEqual(["casync", "restic", "borg", "zstd"]);
    for (const p of report.peers) {
      if (p.measured) {
        expect(p.storedBytes).toBeGreaterThan(0);
        expect(p.version).not.toBe("");
      } else {
        expect(p.storedBytes).toBeUndefined();
        expect(p.reason).toBeTruthy();
      }
    }
    if (process.env.CI) expect(report.peers.every((p) => p.measured)).toBe(true);
  });

  test("a peer that is not installed is listed as not measured", async () => {
    // A PATH with the shell and node but none of the peers.
    const bin = join(dir, "bin");
    await mkdir(bin, { recursive: true });
    for (const p of ["sh", "node"]) {
      const target = p === "node" ? process.execPath : "/bin/sh";
      if (!existsSync(join(bin, p))) await symlink(target, join(bin, p));
    }
    const alone = join(dir, "alone");
    const r = await evaluate(alone, [], { ...process.env, PATH: bin });
    expect(r.status, r.err).toBe(0);
    const rep = JSON.parse(await readFile(join(alone, "report.json"), "utf8")) as Report;
    for (const p of rep.peers)
      expect(p).toMatchObject({ measured: false, reason: `${p.name} is not installed` });
  });

  test("an interrupted evaluation resumes: finished configurations are not run again", async () => {
    const again = join(dir, "again");
    const child: ChildProcess = spawn(
      process.execPath,
      [
        BIN,
        "evaluate",
        "--corpus",
        corpus,
        "--configs",
        join(dir, "configs.json"),
        "--out",
        again,
        "--no-peers",
      ],
      { stdio: "ignore" },
    );
    const first = join(again, "results", "config-16k.json");
    for (let i = 0; i < 600 && !existsSync(first); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const before = (await stat(first)).mtimeMs;
    const r = await evaluate(again, ["--no-peers"]);
    expect(r.status, r.err).toBe(0);
    expect((await stat(first)).mtimeMs).toBe(before);
    // A killed run cannot clean up; the next one removes what it left.
    expect(existsSync(join(again, "scratch"))).toBe(false);
    const rep = JSON.parse(await readFile(join(again, "report.json"), "utf8")) as Report;
    expect(rep.configs.map((c) => c.name)).toEqual(["16k", "64k-zstd"]);
  });

  test("an evaluation stopped by a signal removes its scratch stores and dies of the signal", async () => {
    const stopped = join(dir, "stopped");
    const child: ChildProcess = spawn(
      process.execPath,
      [BIN, "evaluate", "--corpus", corpus, "--configs", join(dir, "configs.json"), "--out", stopped],
      { stdio: "ignore" },
    );
    // The first configuration's scratch store: the run is midway through it.
    const scratch = join(stopped, "scratch", "16k");
    for (let i = 0; i < 600 && !existsSync(scratch); i++) await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(scratch)).toBe(true);
    child.kill("SIGTERM");
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) =>
      child.once("exit", (c, s) => r([c, s])),
    );
    expect({ code, signal }).toEqual({ code: null, signal: "SIGTERM" });
    expect(existsSync(join(stopped, "scratch"))).toBe(false);
    expect(existsSync(join(stopped, "results"))).toBe(true);
    expect(existsSync(join(stopped, "results", "config-16k.json"))).toBe(false);
  });

  const haveChromium = existsSync(CHROMIUM);
  if (!haveChromium && process.env.CI) throw new Error("CI must have chromium (.ci/run installs it)");
  if (!haveChromium) console.warn("skipping the report rendering test: apt-get install chromium");

  test.skipIf(!haveChromium)(
    "the HTML report renders its charts in headless Chromium, from the JSON alone, fetching nothing",
    async () => {
      const { chromium } = await import("playwright-core");
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
      try {
        const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
        const requests: string[] = [];
        page.on("request", (req) => requests.push(req.url()));
        await page.goto(`file://${join(out, "report.html")}`);
        const measured = report.peers.filter((p) => p.measured).length;
        const count = (sel: string) => page.locator(sel).count();
        expect(await count("#chart-stored rect.bar")).toBe(report.configs.length + measured);
        expect(await count("#chart-stored rect.bar.config")).toBe(report.configs.length);
        expect(await count("#chart-tradeoff circle.point")).toBe(report.configs.length + measured);
        expect(await count("#chart-chunk-sizes rect.bin")).toBe(report.analysis?.chunkSizes.counts.length);
        expect(await count("#chart-sharing rect.cell")).toBe(9);
        const labels = await page.locator("#chart-stored text.label").allTextContents();
        expect(labels).toEqual([
          ...report.configs.map((c) => c.name),
          ...report.peers.filter((p) => p.measured).map((p) => p.name),
        ]);
        // Each bar's width follows its value: the widest bar is the largest stored size.
        const widths = await page
          .locator("#chart-stored rect.bar")
          .evaluateAll((els) => els.map((e) => (e as SVGRectElement).getBBox().width));
        expect(widths.every((w) => w > 0)).toBe(true);
        const binSum = await page
          .locator("#chart-chunk-sizes rect.bin")
          .evaluateAll((els) => els.reduce((n, e) => n + Number(e.getAttribute("data-count")), 0));
        expect(binSum).toBe(report.analysis?.chunkSizes.counts.reduce((n, c) => n + c, 0));
        await expectReadableReport(page, JSON.stringify(report));
        expect(requests.every((u) => u.startsWith("file://"))).toBe(true);
        await mkdir(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: join(ARTIFACTS, "evaluate-report.png"), fullPage: true });
        // The docs' sample: more configurations and peers, some nearly on top of each other.
        const sample = await readFile(SAMPLE, "utf8");
        await writeFile(join(dir, "sample.html"), renderReport(JSON.parse(sample) as Report));
        await page.goto(`file://${join(dir, "sample.html")}`);
        expect(await count("#chart-tradeoff circle.point")).toBe(10);
        await expectReadableReport(page, JSON.stringify(JSON.parse(sample)));
        await page.screenshot({ path: join(ARTIFACTS, "evaluate-report-sample.png"), fullPage: true });
      } finally {
        await browser.close();
      }
    },
  );
});

describe("tessera evaluate against an S3 store", () => {
  let s3: S3rver;
  beforeAll(async () => {
    s3 = await startS3rver("evaluate");
  });
  afterAll(async () => {
    await s3?.stop();
  });

  test("an S3 configuration is measured (requests per GiB) and leaves nothing in the bucket", async () => {
    const configs = join(dir, "s3-configs.json");
    await writeFile(
      configs,
      JSON.stringify([
        {
          name: "s3-64k",
          avgChunkKiB: 64,
          compression: "zstd",
          packSizeMiB: 2,
          store: { type: "s3", ...s3.options },
        },
      ]),
    );
    const out = join(dir, "s3-out");
    const r = await runAsync(
      process.execPath,
      [BIN, "evaluate", "--corpus", corpus, "--configs", configs, "--out", out, "--no-peers"],
      { timeout: 300_000 },
    );
    expect(r.status, r.err).toBe(0);
    const rep = JSON.parse(await readFile(join(out, "report.json"), "utf8")) as Report;
    const c = rep.configs[0];
    expect(c?.config.store.type).toBe("s3");
    expect(c?.requests.puts).toBeGreaterThanOrEqual(c?.packs ?? 1);
    expect(c?.requestsPerGiB).toBeGreaterThan(0);
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    });
    const left = await client.send(new ListObjectsV2Command({ Bucket: "evaluate" }));
    expect(left.KeyCount ?? 0).toBe(0);
    client.destroy();
  });
});
