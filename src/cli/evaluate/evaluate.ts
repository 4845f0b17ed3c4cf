/**
 * `tessera evaluate`: runs a corpus of images through storage configurations (each in its own
 * child process, so that its peak memory is its own) and through the peer tools installed here,
 * then writes report.json and report.html. Every finished configuration and peer is saved under
 * OUT/results at once, keyed by what it measured (corpus files and sizes, configuration): an
 * interrupted evaluation run again resumes where it stopped. The scratch stores under
 * OUT/scratch go at the end of every run, finished, failed or interrupted.
 */
import { spawn } from "node:child_process";
import { mkdir, readdir, readFile, readlink, realpath, rename, rm, stat, writeFile } from "node:fs/promises";
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

export interface CorpusImage {
  /** Where to read it: a link's target, since peers (restic, borg) would store a link as a link. */
  path: string;
  /** Its name in the corpus, a link's own name: what the report calls it. */
  name: string;
  size: number;
}

const warnOnStderr = (message: string) => process.stderr.write(`tessera evaluate: ${message}\n`);

/**
 * The images of a corpus: its regular files, and its symbolic links to regular files, followed
 * as `du -L` follows them (a corpus is often links to images kept elsewhere). Subdirectories
 * are not images; a link that leads nowhere readable, or to something other than a regular
 * file, is skipped with a warning, as `du -L` reports what it cannot read and goes on.
 */
export async function corpusImages(dir: string, warn = warnOnStderr): Promise<CorpusImage[]> {
  const out: CorpusImage[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name.startsWith(".") || NOT_IMAGES.test(e.name)) continue;
    if (!e.isFile() && !e.isSymbolicLink()) continue;
    const at = resolve(dir, e.name);
    if (e.isFile()) {
      out.push({ path: at, name: e.name, size: (await stat(at)).size });
      continue;
    }
    const target = await readlink(at).catch(() => "?");
    try {
      const [s, path] = await Promise.all([stat(at), realpath(at)]);
      if (s.isFile()) out.push({ path, name: e.name, size: s.size });
      else warn(`skipping ${at}: a link to ${target}, which is not a regular file`);
    } catch (err) {
      warn(
        `skipping ${at}: a link to ${target}, which cannot be read (${(err as NodeJS.ErrnoException).code})`,
      );
    }
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
  signal: AbortSignal,
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
    // Stopped, the child is still waited for: the scratch it writes in is removed after it.
    const stop = () => child.kill("SIGTERM");
    signal.addEventListener("abort", stop, { once: true });
    child.once("exit", (code) => {
      signal.removeEventListener("abort", stop);
      if (result && !signal.aborted) ok(result);
      else
        fail(
          signal.aborted ? signal.reason : new Error(`the evaluation of a configuration exited with ${code}`),
        );
    });
  });
}

/** The body of `tessera evaluate-one`: one configuration, progress and result on stdout. */
export async function evaluateOne(payloadBase64: string): Promise<void> {
  const p = JSON.parse(Buffer.from(payloadBase64, "base64").toString("utf8")) as {
    config: EvalConfig;
    images: CorpusImage[];
    scratch: string;
    analyze: boolean;
  };
  // Stopped (by the parent, or Ctrl-C on the terminal), the configuration ends at its next piece
  // and cleans up as it does when done: its scratch, and what it wrote to an S3 bucket.
  const abort = new AbortController();
  const stop = () => abort.abort(new Error("interrupted"));
  process.once("SIGINT", stop).once("SIGTERM", stop);
  let last = 0;
  try {
    const result = await runConfig(p.config, p.images, p.scratch, {
      analyze: p.analyze,
      signal: abort.signal,
      onProgress: (phase, done, total) => {
        const now = Date.now();
        if (now - last < 200 && done < total) return;
        last = now;
        process.stdout.write(`P ${phase} ${done} ${total}\n`);
      },
    });
    process.stdout.write(`R ${JSON.stringify(result)}\n`);
  } catch (e) {
    // Interrupted is no error to print: the run as a whole exits by the signal.
    if (!abort.signal.aborted) throw e;
    process.exitCode = 1;
  }
}

export async function evaluate(o: EvaluateOptions): Promise<Report> {
  const images = await corpusImages(o.corpus);
  const configs = o.configsFile
    ? parseConfigs(JSON.parse(await readFile(o.configsFile, "utf8")))
    : DEFAULT_EVAL_CONFIGS;
  await mkdir(join(o.out, "results"), { recursive: true });
  const corpusKey = images.map((i) => `${i.name}:${i.size}`).join(",");
  // The corpus figures come from the 64 KiB configuration (Tessera's default), or the first.
  const analyzed = (configs.find((c) => c.chunker.avg === 64 * 1024) ?? configs[0]) as EvalConfig;

  // Interrupted (Ctrl-C, a service stop), the run stops what it is running, removes the scratch and
  // dies of the signal; what finished is already in OUT/results for the next run to resume from.
  const abort = new AbortController();
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) {
      // A second signal: stop waiting for the cleanup.
      process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
      process.kill(process.pid, sig);
      return;
    }
    signalled = sig;
    abort.abort(new Error(`interrupted (${sig})`));
  };
  process.on("SIGINT", onSignal).on("SIGTERM", onSignal);
  try {
    const results = await runConfigs(o, configs, analyzed, images, corpusKey, abort.signal);
    const peers = await runPeers(o, images, corpusKey, abort.signal);
    return await writeReport(o, images, results, peers, analyzed);
  } finally {
    process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
    // Scratch stores are as large as what they stored: never left behind, whatever the outcome.
    await rm(join(o.out, "scratch"), { recursive: true, force: true, maxRetries: 5 });
    if (signalled) process.kill(process.pid, signalled);
  }
}

async function runConfigs(
  o: EvaluateOptions,
  configs: EvalConfig[],
  analyzed: EvalConfig,
  images: CorpusImage[],
  corpusKey: string,
  signal: AbortSignal,
): Promise<ConfigResult[]> {
  const results: ConfigResult[] = [];
  const bar = progress("bytes");
  try {
    for (const cfg of configs) {
      signal.throwIfAborted();
      const file = join(o.out, "results", `config-${cfg.name}.json`);
      const key = JSON.stringify({ corpusKey, cfg, analyze: cfg === analyzed });
      const saved = await loadJson<{ key: string; result: ConfigResult }>(file);
      if (saved?.key === key) {
        results.push(saved.result);
        continue;
      }
      const result = await runChild(
        o.bin,
        { config: cfg, images, scratch: join(o.out, "scratch", cfg.name), analyze: cfg === analyzed },
        (phase, done, total) => bar.update(`${cfg.name} ${phase}`, done, total),
        signal,
      );
      await saveJson(file, { key, result });
      results.push(result);
    }
  } finally {
    bar.stop();
  }
  return results;
}

async function runPeers(
  o: EvaluateOptions,
  images: CorpusImage[],
  corpusKey: string,
  signal: AbortSignal,
): Promise<PeerResult[]> {
  const peers: PeerResult[] = [];
  const steps = progress("items");
  try {
    for (const [i, name] of PEER_NAMES.entries()) {
      signal.throwIfAborted();
      if (o.peers === false) {
        peers.push({ name, measured: false, reason: "peers not asked for (--no-peers)" });
        continue;
      }
      const file = join(o.out, "results", `peer-${name}.json`);
      const saved = await loadJson<{ key: string; result: PeerResult }>(file);
      if (saved?.key === corpusKey && saved.result.measured) {
        peers.push(saved.result);
        continue;
      }
      steps.update(`peer ${name}`, i, PEER_NAMES.length);
      const result = await runPeer(name, images, join(o.out, "scratch", `peer-${name}`), signal);
      // A peer stopped midway "failed": that is no result to keep.
      signal.throwIfAborted();
      await saveJson(file, { key: corpusKey, result });
      peers.push(result);
    }
    steps.update("peers", PEER_NAMES.length, PEER_NAMES.length);
  } finally {
    steps.stop();
  }
  return peers;
}

async function writeReport(
  o: EvaluateOptions,
  images: CorpusImage[],
  results: ConfigResult[],
  peers: PeerResult[],
  analyzed: EvalConfig,
): Promise<Report> {
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
