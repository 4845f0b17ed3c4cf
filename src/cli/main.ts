#!/usr/bin/env node
/**
 * The `tessera` command. Each subcommand (commands.ts) drives the engine and prints one JSON
 * result on stdout (`cat` prints the object's bytes instead), so it can be scripted and
 * benchmarked. Exit status: 0, 1 for a failure (one JSON line on stderr), 2 for bad usage.
 */
import { parseArgs } from "node:util";
import { TesseraError } from "../errors.js";
import { UsageError } from "./command.js";
import { COMMANDS, USAGE } from "./commands.js";

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
      workers: { type: "string" },
      config: { type: "string" },
      "disk-format": { type: "string" },
      to: { type: "string" },
      from: { type: "string" },
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
      merge: { type: "boolean" },
      "prefer-new": { type: "boolean" },
      overwrite: { type: "boolean" },
      glance: { type: "string" },
      token: { type: "string" },
      header: { type: "string", multiple: true },
      parallel: { type: "string" },
      report: { type: "string" },
      "allow-migrate": { type: "boolean" },
      write: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  const [name, arg, ...rest] = positionals;
  if (values.help || !name) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw new UsageError(`unknown command ${name}`);
  await command.run({ arg, rest, values, argv });
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
