/**
 * `tessera metadefs load | export | unload`: Glance's metadata definition files into the
 * catalog and back out, as `glance-manage db load_metadefs / export_metadefs / unload_metadefs`
 * (metadefs/definition-files.ts). Works beside a running server: it goes through the catalog's
 * units of work, as every node does.
 */

import { join } from "node:path";
import { openCatalog } from "../../catalog/open.js";
import { exportDefinitions, loadDefinitions, unloadDefinitions } from "../../metadefs/definition-files.js";
import { type Command, print, storeConfigOf, UsageError } from "../command.js";

export const metadefsCommand: Command = {
  name: "metadefs",
  usage: `  tessera metadefs load DIR|FILE [--merge [--prefer-new | --overwrite]] [--data DIR] [--config FILE]
  tessera metadefs export DIR [--data DIR] [--config FILE]
  tessera metadefs unload [--data DIR] [--config FILE]
                                              load Glance's metadata definition files (e.g.
                                              /usr/share/glance-common/metadefs) into the catalog,
                                              skipping namespaces it has (--merge: add what they
                                              lack; --prefer-new: and update them; --overwrite:
                                              replace them); write them out, one file each; or
                                              remove every namespace and resource type`,
  async run({ arg, rest, values }) {
    const path = rest?.[0];
    if (arg !== "load" && arg !== "export" && arg !== "unload") {
      throw new UsageError(
        arg === undefined
          ? "metadefs needs a subcommand: load, export or unload"
          : `unknown metadefs subcommand ${arg}`,
      );
    }
    if (arg !== "unload" && path === undefined) throw new UsageError(`metadefs ${arg} needs a directory`);
    const { merge, overwrite } = values;
    const preferNew = values["prefer-new"];
    if ((preferNew || overwrite) && !merge)
      throw new UsageError("--prefer-new and --overwrite go with --merge");
    if (preferNew && overwrite) throw new UsageError("--prefer-new and --overwrite exclude each other");
    const cfg = await storeConfigOf(values);
    const catalog = await openCatalog(join(cfg.dataDir, "catalog"), cfg.catalog);
    try {
      if (arg === "load")
        print(await loadDefinitions(catalog, path as string, { merge, preferNew, overwrite }));
      else if (arg === "export") print({ files: await exportDefinitions(catalog, path as string) });
      else print(await unloadDefinitions(catalog));
    } finally {
      await catalog.close();
    }
  },
};
