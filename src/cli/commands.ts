/**
 * The `tessera` subcommands, in the order the usage text lists them, and the text itself.
 */
import type { Command } from "./command.js";
import { backupCommand, restoreCommand } from "./commands/backup.js";
import { catalogCommand } from "./commands/catalog.js";
import { evaluate, evaluateOne } from "./commands/evaluate.js";
import { fsck } from "./commands/fsck.js";
import { gc } from "./commands/gc.js";
import { convert, copyImage } from "./commands/image-commands.js";
import { imageRecords } from "./commands/image-records.js";
import { inspect } from "./commands/inspect.js";
import { metadefsCommand } from "./commands/metadefs.js";
import { migrateFromGlanceCommand } from "./commands/migrate.js";
import { cat, ingest, rebuildIndex, stat } from "./commands/objects.js";
import { serve } from "./commands/serve.js";
import { stats } from "./commands/stats.js";

export const COMMANDS: Command[] = [
  serve,
  ingest,
  cat,
  stat,
  rebuildIndex,
  inspect,
  convert,
  gc,
  fsck,
  imageRecords,
  stats,
  copyImage,
  catalogCommand,
  backupCommand,
  restoreCommand,
  metadefsCommand,
  migrateFromGlanceCommand,
  evaluate,
  evaluateOne,
];

const OPTIONS = `options:
  --data DIR      the store's directory (default ./data, or $TESSERA_DATA)
  --config FILE   the server's configuration (its stores, hash algorithm, format rules)
  --store S       the store to use (default: the configuration's defaultStore)
  --no-fsync      do not fsync packs (faster, not crash-safe; for benchmarks)
  --allow-migrate migrate an older PostgreSQL catalog schema at start (take a backup first)`;

export const USAGE = ["usage:", ...COMMANDS.filter((c) => c.usage !== "").map((c) => c.usage), OPTIONS].join(
  "\n",
);
