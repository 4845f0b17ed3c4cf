/**
 * `tessera evaluate`: runs a corpus of images through storage configurations (each in its own
 * child process, so that its peak memory is its own) and through the peer tools installed here,
 * then writes report.json and report.html. Every finished configuration and peer is saved under
 * OUT/results at once, keyed by what it measured (corpus files and sizes, configuration): an
 * interrupted evaluation run again resumes where it stopped.
 */
import { spawn } from "node:child_process";
import { mkdir, readdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { progress } from "../progress.js";
import { DEFAULT_EVAL_CONFIGS, type EvalConfig, parseConfigs } from "./configs.js";
import { PEER_NAMES, type PeerResult, runPeer } from "./peers.js";
import { type Report, renderReport } from "./report.js";
import { type ConfigResult, runConfig } from "./run-config.js";

export interface EvaluateOptions {
  corpus: string;
  configsFile?: string;
  out: string;
  /** The command line, as the report records it. */
  command: string;
  peers?: boolean;
  /** The CLI's own entry point, for the child processes. */
  bin: string;
  version: string;
}

/** Files that are notes about a corpus rather than images in it. */
const NOT_IMAGES = /\.(tsv|csv|txt|md|json|sha256|sha512|log)$/i;

export async function corpusImages(dir: string): Promise<{ path: string; name: string; size: number }[]> {
  const out: { path: string; name: string; size: number }[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (!e.isFile() || e.name.startsWith(".") || NOT_IMAGES.test(e.name)) continue;
    const path = resolve(dir, e.name);
    out.push({ path, name: e.name, size: (await stat(path)).size });
  }
  if (out.length === 0) throw new Error(`no images in ${dir}`);
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** Writes `value` as JSON atomically: an interruption leaves the old file or the new, never half. */
async function saveJson(path: string, value: unknown): Promise<void> {
  await writeFile(`${path}.tmp`, `${JSON.stringify(value, null, 2)}\n`);
  await rename(`${path}.tmp`, path);
}

async function loadJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}

/** Runs one configuration in a child process (`tessera evaluate-one`), relaying its progress. */
function runChild(
  bin: string,
  payload: unknown,
  onProgress: (phase: string, done: number, total: number) => void,
): Promise<ConfigResult> {
  return new Promise((ok, fail) => {
    const child = spawn(
      process.execPath,
      [bin, "evaluate-one", "--payload", Buffer.from(JSON.stringify(payload)).toString("base64")],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let result: ConfigResult | undefined;
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      if (line.startsWith("P ")) {
        const [, phase, done, total] = line.split(" ");
        onProgress(phase as string, Number(done), Number(total));
      } else if (line.startsWith("R ")) {
        result = JSON.parse(line.slice(2)) as ConfigResult;
      }
    });
    child.once("exit", (code) =>
      result ? ok(result) : fail(new Error(`the evaluation of a configuration exited with ${code}`)),
    );
  });
}

/** The body of `tessera evaluate-one`: one configuration, progress and result on stdout. */
export async function evaluateOne(payloadBase64: string): Promise<void> {
  const p = JSON.parse(Buffer.from(payloadBase64, "base64").toString("utf8")) as {
    config: EvalConfig;
    images: { path: string; size: number }[];
    scratch: string;
    analyze: boolean;
  };
  let last = 0;
  const result = await runConfig(p.config, p.images, p.scratch, {
    analyze: p.analyze,
    onProgress: (phase, done, total) => {
      const now = Date.now();
      if (now - last < 200 && done < total) return;
      last = now;
      process.stdout.write(`P ${phase} ${done} ${total}\n`);
    },
  });
  process.stdout.write(`R ${JSON.stringify(result)}\n`);
}

export async function evaluate(o: EvaluateOptions): Promise<Report> {
  const images = await corpusImages(o.corpus);
  const configs = o.configsFile
    ? parseConfigs(JSON.parse(await readFile(o.configsFile, "utf8")))
    : DEFAULT_EVAL_CONFIGS;
  const resultsDir = join(o.out, "results");
  const scratch = join(o.out, "scratch");
  await mkdir(resultsDir, { recursive: true });
  const corpusKey = images.map((i) => `${i.name}:${i.size}`).join(",");
  // The corpus figures come from the 64 KiB configuration (Tessera's default), or the first.
  const analyzed = (configs.find((c) => c.chunker.avg === 64 * 1024) ?? configs[0]) as EvalConfig;

  const results: ConfigResult[] = [];
  const bar = progress("bytes");
  try {
    for (const cfg of configs) {
      const file = join(resultsDir, `config-${cfg.name}.json`);
      const key = JSON.stringify({ corpusKey, cfg, analyze: cfg === analyzed });
      const saved = await loadJson<{ key: string; result: ConfigResult }>(file);
      if (saved?.key === key) {
        results.push(saved.result);
        continue;
      }
      const result = await runChild(
        o.bin,
        { config: cfg, images, scratch: join(scratch, cfg.name), analyze: cfg === analyzed },
        (phase, done, total) => bar.update(`${cfg.name} ${phase}`, done, total),
      );
      await saveJson(file, { key, result });
      results.push(result);
    }
  } finally {
    bar.stop();
  }

  const peers: PeerResult[] = [];
  const steps = progress("items");
  try {
    for (const [i, name] of PEER_NAMES.entries()) {
      if (o.peers === false) {
        peers.push({ name, measured: false, reason: "peers not asked for (--no-peers)" });
        continue;
      }
      const file = join(resultsDir, `peer-${name}.json`);
      const saved = await loadJson<{ key: string; result: PeerResult }>(file);
      if (saved?.key === corpusKey && saved.result.measured) {
        peers.push(saved.result);
        continue;
      }
      steps.update(`peer ${name}`, i, PEER_NAMES.length);
      const result = await runPeer(
        name,
        images.map((img) => img.path),
        join(scratch, `peer-${name}`),
      );
      await saveJson(file, { key: corpusKey, result });
      peers.push(result);
    }
    steps.update("peers", PEER_NAMES.length, PEER_NAMES.length);
  } finally {
    steps.stop();
  }

  const cpu = cpus();
  const withAnalysis = results.find((r) => r.name === analyzed.name);
  const report: Report = {
    tool: { name: "tessera", version: o.version },
    command: o.command,
    createdAt: new Date().toISOString(),
    machine: {
      platform:
        `${process.platform} ${(await readFile("/etc/debian_version", "utf8").catch(() => "")).trim()}`.trim(),
      arch: process.arch,
      cpus: cpu.length,
      cpuModel: cpu[0]?.model ?? "unknown",
      memoryBytes: totalmem(),
      node: process.version,
    },
    corpus: {
      dir: resolve(o.corpus),
      images: images.map((i) => ({ name: i.name, bytes: i.size })),
      totalBytes: images.reduce((n, i) => n + i.size, 0),
    },
    configs: results.map(({ analysis: _, ...rest }) => rest),
    peers,
    analysis: withAnalysis?.analysis ? { config: analyzed.name, ...withAnalysis.analysis } : null,
  };
  await saveJson(join(o.out, "report.json"), report);
  await writeFile(join(o.out, "report.html"), renderReport(report));
  return report;
}
