/**
 * `tessera backup` and `tessera restore` (src/backup): a consistent copy of the catalog and the
 * filesystem stores taken while the server serves, and its restoration into an empty data
 * directory (or database) and empty stores.
 */
import { backup } from "../../backup/backup.js";
import { restore } from "../../backup/restore.js";
import { type Command, configOf, print, storeConfigOf, UsageError } from "../command.js";
import { progress } from "../progress.js";

export const backupCommand: Command = {
  name: "backup",
  usage: `  tessera backup --to DIR [--data DIR] [--config FILE]
                                              copy the catalog (an LMDB snapshot, or pg_dump) and
                                              every filesystem store into DIR (missing or empty),
                                              beside a running server; S3 and Swift stores are
                                              named, not copied (docs/operations.md)`,
  async run({ values }) {
    if (values.to === undefined) throw new UsageError("backup needs --to DIR");
    const cfg = await storeConfigOf(values);
    const bar = progress("items");
    try {
      print(await backup(cfg, values.to, { onProgress: bar.update }));
    } finally {
      bar.stop();
    }
  },
};

export const restoreCommand: Command = {
  name: "restore",
  usage: `  tessera restore --from DIR [--data DIR] [--config FILE]
                                              restore a backup into an empty data directory (or
                                              empty database) and empty stores; check every pack
                                              the catalog names`,
  async run({ values }) {
    if (values.from === undefined) throw new UsageError("restore needs --from DIR");
    const cfg = configOf(values);
    const bar = progress("items");
    try {
      print(await restore(values.from, cfg, bar.update));
    } finally {
      bar.stop();
    }
  },
};
