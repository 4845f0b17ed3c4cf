/**
 * What the `tessera` subcommands share: their shape in the command table, the flags (one set
 * for all, as parsed by main.ts), usage errors (exit status 2), and the configuration they run
 * with.
 */
import { loadConfig } from "../config/load.js";
import { ConfigError, type ServerConfig } from "../config/server-config.js";
import { requireDataDir } from "./data-dir.js";

/** Every flag of every command; main.ts refuses any other. */
export interface Flags {
  data?: string;
  start?: string;
  end?: string;
  "no-fsync"?: boolean;
  host?: string;
  port?: string;
  workers?: string;
  config?: string;
  "disk-format"?: string;
  to?: string;
  from?: string;
  store?: string;
  "dry-run"?: boolean;
  grace?: string;
  repair?: boolean;
  json?: boolean;
  image?: string;
  "cpu-seconds"?: string;
  "address-space"?: string;
  corpus?: string;
  configs?: string;
  out?: string;
  "no-peers"?: boolean;
  payload?: string;
  merge?: boolean;
  "prefer-new"?: boolean;
  overwrite?: boolean;
  glance?: string;
  token?: string;
  header?: string[];
  parallel?: string;
  report?: string;
  "allow-migrate"?: boolean;
  write?: boolean;
  help?: boolean;
}

export interface CommandInput {
  /** The positional argument after the command's name, if any. */
  arg: string | undefined;
  /** The positional arguments after that one (a subcommand's own). */
  rest?: string[];
  values: Flags;
  /** The whole command line after `tessera`. */
  argv: string[];
}

export interface Command {
  name: string;
  /** Its lines in the usage text; empty for a command run only by tessera itself. */
  usage: string;
  /** Does the work and prints its result; sets process.exitCode when the result is a failure. */
  run(input: CommandInput): Promise<void>;
}

/** A command line that makes no sense: reported with the usage text, exit status 2. */
export class UsageError extends Error {}

/** The value of integer flag `--name`, if given. */
export function intOption(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name} must be a non-negative integer`);
  return Number(v);
}

/** Prints a command's result: one JSON line on stdout. */
export function print(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v)}\n`);
}

/**
 * The configuration a command runs with: the file of --config (or $TESSERA_CONFIG), the
 * environment, then the flags. A configuration it refuses is a UsageError.
 */
export function configOf(values: Flags): ServerConfig {
  let cfg: ServerConfig;
  try {
    cfg = loadConfig(values.config ?? process.env.TESSERA_CONFIG, process.env, {
      host: values.host,
      port: values.port,
      workers: values.workers,
      dataDir: values.data,
      fsync: values["no-fsync"] ? false : undefined,
    });
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
  if (!values["allow-migrate"]) return cfg;
  // A flag for the one start that migrates, so the configuration need not change for it.
  if (cfg.catalog.type !== "postgres") {
    throw new UsageError(
      "--allow-migrate is for a PostgreSQL catalog (an LMDB one is copied aside and migrated)",
    );
  }
  return { ...cfg, catalog: { ...cfg.catalog, allowMigrate: true } };
}

/**
 * The configuration of a command that reads a store, once it is known to have one (before any
 * lock is taken: the lock file would be the first thing created). `needs` "store": a store
 * with its format record will do instead of a catalog.
 */
export async function storeConfigOf(
  values: Flags,
  needs: "catalog" | "store" = "catalog",
): Promise<ServerConfig> {
  const cfg = configOf(values);
  await requireDataDir(cfg, needs === "store" ? (values.store ?? cfg.defaultStore) : undefined);
  return cfg;
}
