/**
 * `tessera fsck`: scrub, read-only beside a running server (readers share the catalog); with
 * --repair it writes, so it takes the directory like convert and copy-image.
 */
import { lockDir } from "../../engine/dir-lock.js";
import { type Command, print, storeConfigOf } from "../command.js";
import { NO_LOCK, withService } from "../data-dir.js";
import { progress } from "../progress.js";

export const fsck: Command = {
  name: "fsck",
  usage: `  tessera fsck [--data DIR] [--config FILE] [--store S] [--repair]
                                              read and check every chunk and manifest; --repair
                                              (server stopped) replaces bad chunks from other
                                              stores and marks what cannot be; exit status 1 if
                                              anything is left bad`,
  async run({ values }) {
    const cfg = await storeConfigOf(values);
    const unlock = values.repair ? await lockDir(cfg.dataDir) : NO_LOCK;
    await withService(cfg, "engine", unlock, async ({ engine }) => {
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
  },
};
