#!/usr/bin/env node
/**
 * The `tessera` command. Each subcommand drives the engine and prints one JSON result on
 * stdout (`cat` prints the object's bytes instead), so it can be scripted and benchmarked.
 */
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { Engine } from "../engine/engine.js";
import { readFilePieces } from "../engine/file-source.js";
import { TesseraError } from "../errors.js";

const USAGE = `usage:
  tessera ingest FILE|- [--data DIR]          store a file (or stdin); prints the manifest id and stats
  tessera cat MANIFEST_ID [--data DIR] [--start N] [--end N] > FILE
                                              write an object (or the bytes [start, end)) to stdout
  tessera stat MANIFEST_ID [--data DIR]       print an object's size, hashes and holders
  tessera rebuild-index [--data DIR]          rebuild the chunk index from the packs
options:
  --data DIR      the store's directory (default ./data, or $TESSERA_DATA)
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
      help: { type: "boolean", short: "h" },
    },
  });
  const [command, arg] = positionals;
  if (values.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const dataDir = values.data ?? process.env.TESSERA_DATA ?? "./data";
  const needsArg = command === "ingest" || command === "cat" || command === "stat";
  if (needsArg && !arg) throw new UsageError(`${command} needs an argument`);
  if (!["ingest", "cat", "stat", "rebuild-index"].includes(command)) {
    throw new UsageError(`unknown command ${command}`);
  }
  const engine = await Engine.openDir(dataDir, { durable: !values["no-fsync"] });
  try {
    if (command === "ingest") {
      const source = arg === "-" ? process.stdin : readFilePieces(arg);
      print(await engine.ingest(source));
    } else if (command === "cat") {
      const start = intOption(values.start, "start");
      const end = intOption(values.end, "end");
      await pipeline(engine.read(arg, { start, end }), process.stdout as Writable);
    } else if (command === "stat") {
      print({ manifestId: arg, ...engine.stat(arg) });
    } else {
      print(await engine.rebuildIndex());
    }
  } finally {
    await engine.close();
  }
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
