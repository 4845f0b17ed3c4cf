/**
 * `tessera image-records`: whether the stores' record objects of the images say what the
 * catalog says (images/record-check.ts); `--write` writes those missing or stale. It may run
 * beside a server: each record is numbered by the catalog, so a server's own later save wins.
 */
import { checkImageRecords } from "../../images/record-check.js";
import { type Command, print, storeConfigOf } from "../command.js";
import { NO_LOCK, withService } from "../data-dir.js";

export const imageRecords: Command = {
  name: "image-records",
  usage: `  tessera image-records [--data DIR] [--config FILE] [--write]
                                              check that every image's record object on the
                                              stores is its state in the catalog; --write writes
                                              those missing or stale (exit status 1 if any is
                                              left so)`,
  async run({ values }) {
    const cfg = await storeConfigOf(values);
    await withService(cfg, "engine", NO_LOCK, async ({ engine }) => {
      const report = await checkImageRecords(engine, values.write === true);
      print(report);
      const left = values.write
        ? (report.failed?.length ?? 0) > 0
        : report.missing.length + report.stale.length > 0;
      if (left) process.exitCode = 1;
    });
  },
};
