#!/usr/bin/env node
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
/**
 * The `tessera` command. Each subcommand drives the engine and prints one JSON result on
 * stdout (`cat` prints the object's bytes instead), so it can be scripted and benchmarked.
 */
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startServer } from "../api/server.js";
import { getImage } from "../catalog/image-records.js";
import { DirInUseError, LOCAL_TOKEN_FILE, lockDir, SERVER_URL_FILE } from "../engine/dir-lock.js";
import { readFilePieces } from "../engine/file-source.js";
import type { GcOptions } from "../engine/gc.js";
import { TesseraError } from "../errors.js";
import { DEFAULT_CONVERSION_LIMITS } from "../formats/qemu-img.js";
import { ImageService } from "../images/images.js";
import { ConfigError, loadConfig, nodeHashName, type ServerConfig } from "./config.js";
import { NO_LOCK, requireDataDir, withEngine } from "./data-dir.js";
import { evaluate, evaluateOne } from "./evaluate/evaluate.js";
import { inspectFile } from "./inspect.js";
import { progress } from "./progress.js";
import { statsText } from "./stats.js";

/** This program's version, as package.json says. */
const VERSION =
  (
    JSON.parse(
      await readFile(new URL("../../../package.json", import.meta.url), "utf8").catch(() => "{}"),
    ) as {
      version?: string;
    }
  ).version ?? "unknown";

const USAGE = `usage:
  tessera serve [--host H] [--port P] [--data DIR] [--config FILE]
                                              serve the Glance Images API v2 (default 127.0.0.1:9292,
                                              ./data); docs/configuration.md lists every setting
  tessera ingest FILE|- [--data DIR] [--store S]
                                              store a file (or stdin); prints the manifest id and stats
  tessera cat MANIFEST_ID [--data DIR] [--start N] [--end N] > FILE
                                              write an object (or the bytes [start, end)) to stdout
  tessera stat MANIFEST_ID [--data DIR]       print an object's size, hashes and holders
  tessera rebuild-index [--data DIR] [--store S]
                                              rebuild a store's chunk index from its packs
  tessera inspect FILE|- [--disk-format F]    detect a disk image's format and virtual size and
                                              apply the safety rules, for F if given, else for
                                              the detected format (exit status 1 if broken)
  tessera convert IMAGE_ID --to FORMAT [--data DIR] [--config FILE]
                  [--cpu-seconds N] [--address-space BYTES]
                                              convert a stored image with qemu-img (raw, qcow2,
                                              vmdk, vhd, vhdx, vdi); the server must be stopped
  tessera gc [--data DIR] [--config FILE] [--dry-run] [--grace SECONDS] [--store S]
                                              collect garbage: what no image references leaves the
                                              index, packs and manifests after the grace period
                                              (default gcGraceSeconds, 3600); through the server
                                              when one holds the directory
  tessera fsck [--data DIR] [--config FILE] [--store S] [--repair]
                                              read and check every chunk and manifest; --repair
                                              (server stopped) replaces bad chunks from other
                                              stores and marks what cannot be; exit status 1 if
                                              anything is left bad
  tessera stats [--data DIR] [--config FILE] [--image ID] [--json]
                                              logical against stored bytes per store (or one
                                              image's unique and shared bytes); a table, or JSON
  tessera copy-image IMAGE_ID --to STORE [--data DIR] [--config FILE]
                                              copy an image's data into another store, moving only
                                              the chunks it lacks; the server must be stopped
  tessera evaluate --corpus DIR [--configs FILE] [--out DIR] [--no-peers]
                                              run the images in DIR through storage configurations
                                              (and casync, restic, borg, zstd where installed) and
                                              write OUT/report.json and OUT/report.html (default
                                              ./evaluation); resumes an interrupted run
options:
  --data DIR      the store's directory (default ./data, or $TESSERA_DATA)
  --config FILE   the server's configuration (its stores, hash algorithm, format rules)
  --store S       the store to use (default: the configuration's defaultStore)
  --no-fsync      do not fsync packs (faster, not crash-safe; for benchmarks)`;

class UsageError extends Error {}

function intOption(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name} must be a non-negative integer`);
  return Number(v);
}

async function run(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      data: { type: "string" },
      start: { type: "string" },
      end: { type: "string" },
      "no-fsync": { type: "boolean" },
      host: { type: "string" },
      port: { type: "string" },
      config: { type: "string" },
      "disk-format": { type: "string" },
      to: { type: "string" },
      store: { type: "string" },
      "dry-run": { type: "boolean" },
      grace: { type: "string" },
      repair: { type: "boolean" },
      json: { type: "boolean" },
      image: { type: "string" },
      "cpu-seconds": { type: "string" },
      "address-space": { type: "string" },
      corpus: { type: "string" },
      configs: { type: "string" },
      out: { type: "string" },
      "no-peers": { type: "boolean" },
      payload: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const [command, arg] = positionals;
  if (values.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (command === "serve") {
    await serveCommand(values);
    return;
  }
  if (command === "inspect") {
    if (!arg) throw new UsageError("inspect needs a file");
    const report = await inspectFile(arg, values["disk-format"], config(values).formats);
    print(report);
    if (report.violations.length > 0) process.exitCode = 1;
    return;
  }
  if (command === "convert") {
    if (!arg || !values.to) throw new UsageError("convert needs an image id and --to FORMAT");
    await convertCommand(arg, values.to, values);
    return;
  }
  if (command === "gc") {
    await gcCommand(values);
    return;
  }
  if (command === "stats") {
    await statsCommand(values);
    return;
  }
  if (command === "fsck") {
    await fsckCommand(values);
    return;
  }
  if (command === "evaluate") {
    if (!values.corpus) throw new UsageError("evaluate needs --corpus DIR");
    const out = values.out ?? "./evaluation";
    const report = await evaluate({
      corpus: values.corpus,
      configsFile: values.configs,
      out,
      peers: values["no-peers"] !== true,
      command: ["tessera", ...argv].join(" "),
      bin: fileURLToPath(import.meta.url),
      version: VERSION,
    });
    print({
      report: join(out, "report.html"),
      json: join(out, "report.json"),
      configs: report.configs.length,
    });
    return;
  }
  if (command === "evaluate-one") {
    await evaluateOne(values.payload ?? "");
    return;
  }
  if (command === "copy-image") {
    if (!arg || !values.to) throw new UsageError("copy-image needs an image id and --to STORE");
    const to = values.to;
    await withImages(await storeConfig(values), (images) => images.copyToStore(arg, to));
    return;
  }

  const needsArg = command === "ingest" || command === "cat" || command === "stat";
  if (needsArg && !arg) throw new UsageError(`${command} needs an argument`);
  if (!["ingest", "cat", "stat", "rebuild-index"].includes(command)) {
    throw new UsageError(`unknown command ${command}`);
  }
  // rebuild-index is how a lost catalog comes back: the store's own format record will do.
  const cfg =
    command === "ingest"
      ? config(values)
      : await storeConfig(values, command === "rebuild-index" ? "store" : "catalog");
  await withEngine(cfg, NO_LOCK, async (engine) => {
    if (command === "ingest") {
      const source = arg === "-" ? process.stdin : readFilePieces(arg);
      const total = arg === "-" ? 0 : (await stat(arg)).size;
      print(await engine.ingest(counted(source, "ingest", total), { store: values.store }));
    } else if (command === "cat") {
      const size = engine.stat(arg).size;
      const start = intOption(values.start, "start");
      const end = intOption(values.end, "end");
      const total = (end ?? size) - (start ?? 0);
      await pipeline(counted(engine.read(arg, { start, end }), "cat", total), process.stdout as Writable);
    } else if (command === "stat") {
      print({ manifestId: arg, ...engine.stat(arg) });
    } else {
      print(await engine.rebuildIndex(values.store));
    }
  });
}

interface Flags {
  host?: string;
  port?: string;
  data?: string;
  config?: string;
  "no-fsync"?: boolean;
  "disk-format"?: string;
  "cpu-seconds"?: string;
  "address-space"?: string;
  store?: string;
  "dry-run"?: boolean;
  grace?: string;
  repair?: boolean;
  json?: boolean;
  image?: string;
}

/** Passes `source` through, showing its progress on standard error (total 0: unknown). */
async function* counted(
  source: AsyncIterable<Uint8Array>,
  label: string,
  total: number,
): AsyncGenerator<Uint8Array> {
  const bar = progress("bytes");
  let done = 0;
  try {
    for await (const piece of source) {
      done += piece.length;
      bar.update(label, done, Math.max(total, done));
      yield piece;
    }
  } finally {
    bar.stop();
  }
}

/**
 * Runs `fn` on the image service of a stopped server's directory and prints what it returns.
 * A running server would not see the change in its caches of state: one process per directory.
 */
async function withImages(cfg: ServerConfig, fn: (images: ImageService) => Promise<unknown>): Promise<void> {
  await withEngine(cfg, await lockDir(cfg.dataDir), async (engine) => {
    const images = await ImageService.open(engine, {
      sizeCap: cfg.imageSizeCap,
      osHashAlgo: cfg.osHashAlgo,
      formats: cfg.formats,
    });
    print(await fn(images));
  });
}

/** The server's configuration, which the offline commands share (hash names, format rules). */
function config(values: Flags): ServerConfig {
  try {
    return loadConfig(values.config ?? process.env.TESSERA_CONFIG, process.env, {
      host: values.host,
      port: values.port,
      dataDir: values.data,
      fsync: values["no-fsync"] ? false : undefined,
    });
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
}

/**
 * The configuration of a command that reads a store, once it is known to have one (before any
 * lock is taken: the lock file would be the first thing created). `needs` "store": a store
 * with its format record will do instead of a catalog.
 */
async function storeConfig(values: Flags, needs: "catalog" | "store" = "catalog"): Promise<ServerConfig> {
  const cfg = config(values);
  await requireDataDir(cfg, needs === "store" ? (values.store ?? cfg.defaultStore) : undefined);
  return cfg;
}

async function convertCommand(id: string, to: string, values: Flags): Promise<void> {
  const cfg = await storeConfig(values);
  const limits = {
    cpuSeconds: intOption(values["cpu-seconds"], "cpu-seconds") ?? DEFAULT_CONVERSION_LIMITS.cpuSeconds,
    addressSpaceBytes:
      intOption(values["address-space"], "address-space") ?? DEFAULT_CONVERSION_LIMITS.addressSpaceBytes,
  };
  await withImages(cfg, (images) => images.convert(id, to, { limits }));
}

/**
 * Garbage collection on the data directory: in this process when no server holds it, else by
 * the server (which knows its uploads in progress), asked over its loopback URL.
 */
async function gcCommand(values: Flags): Promise<void> {
  const cfg = await storeConfig(values);
  const options: GcOptions = {
    dryRun: values["dry-run"] === true,
    graceSeconds: intOption(values.grace, "grace") ?? cfg.gcGraceSeconds,
    ...(values.store !== undefined ? { store: values.store } : {}),
  };
  let unlock: () => Promise<void>;
  try {
    unlock = await lockDir(cfg.dataDir);
  } catch (e) {
    if (!(e instanceof DirInUseError)) throw e;
    const url = (await readFile(join(cfg.dataDir, SERVER_URL_FILE), "utf8").catch(() => "")).trim();
    if (!url) throw new UsageError(`${e.message}, and it left no URL in ${SERVER_URL_FILE} to ask it`);
    const token = (await readFile(join(cfg.dataDir, LOCAL_TOKEN_FILE), "utf8").catch(() => "")).trim();
    const res = await fetch(`${url}/tessera/v1/gc`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { "x-auth-token": token } : {}) },
      body: JSON.stringify(options),
    });
    if (!res.ok) throw new Error(`the server at ${url} answered ${res.status}: ${await res.text()}`);
    print(await res.json());
    return;
  }
  await withEngine(cfg, unlock, async (engine) => {
    const bar = progress("items");
    print(await engine.gc({ ...options, onProgress: bar.update }).finally(() => bar.stop()));
  });
}

/**
 * Scrub: read-only beside a running server (readers share the catalog); with --repair it
 * writes, so it takes the directory like convert and copy-image.
 */
async function fsckCommand(values: Flags): Promise<void> {
  const cfg = await storeConfig(values);
  const unlock = values.repair ? await lockDir(cfg.dataDir) : NO_LOCK;
  await withEngine(cfg, unlock, async (engine) => {
    const bar = progress("bytes");
    const report = await engine
      .fsck({ repair: values.repair === true, store: values.store, onProgress: bar.update })
      .finally(() => bar.stop());
    print(report);
    const left = report.stores.some(
      (s) => s.badChunks + s.missingChunks > s.repaired || s.damagedObjects.length > 0,
    );
    if (left) process.exitCode = 1;
  });
}

/** Dedup accounting; read-only, so it may run beside a server. */
async function statsCommand(values: Flags): Promise<void> {
  await withEngine(await storeConfig(values), NO_LOCK, async (engine) => {
    const image = values.image ? getImage(engine.catalog, values.image) : undefined;
    if (values.image && !image) throw new UsageError(`no image ${values.image}`);
    process.stdout.write(statsText(engine, image, values.json === true));
  });
}

async function serveCommand(values: Flags): Promise<void> {
  const cfg = config(values);
  const server = await startServer({ ...cfg, osHashNodeName: nodeHashName(cfg.osHashAlgo) });
  let signals = 0;
  const stop = (signal: string) => {
    // A second signal means "now": skip the grace period.
    if (++signals > 1) process.exit(1);
    server.logger.info({ signal }, "signal received");
    server.close().then(
      () => process.exit(0),
      (err) => {
        server.logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

function print(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v)}\n`);
}

run(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof UsageError || (e as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    process.stderr.write(`tessera: ${(e as Error).message}\n${USAGE}\n`);
    process.exitCode = 2;
  } else if (e instanceof TesseraError) {
    process.stderr.write(`${JSON.stringify({ error: e.code, message: e.message })}\n`);
    process.exitCode = 1;
  } else {
    const err = e as NodeJS.ErrnoException;
    process.stderr.write(`${JSON.stringify({ error: err.code ?? "error", message: err.message })}\n`);
    process.exitCode = 1;
  }
});
