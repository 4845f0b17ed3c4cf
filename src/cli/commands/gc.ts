/**
 * `tessera gc`: garbage collection on the data directory, in this process when no server
 * holds it, else by the server (which knows its uploads in progress), asked over its loopback
 * URL with the local admin token it left beside its lock.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { DirInUseError, LOCAL_TOKEN_FILE, lockDir, SERVER_URL_FILE } from "../../engine/dir-lock.js";
import type { GcOptions } from "../../engine/gc.js";
import { type Command, intOption, print, storeConfigOf, UsageError } from "../command.js";
import { withService } from "../data-dir.js";
import { progress } from "../progress.js";

/** Asks the server holding `dataDir` (DirInUseError `busy`) for the collection. */
async function gcByServer(dataDir: string, busy: DirInUseError, options: GcOptions): Promise<void> {
  const url = (await readFile(join(dataDir, SERVER_URL_FILE), "utf8").catch(() => "")).trim();
  if (!url) throw new UsageError(`${busy.message}, and it left no URL in ${SERVER_URL_FILE} to ask it`);
  const token = (await readFile(join(dataDir, LOCAL_TOKEN_FILE), "utf8").catch(() => "")).trim();
  const res = await fetch(`${url}/tessera/v1/gc`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { "x-auth-token": token } : {}) },
    body: JSON.stringify(options),
  });
  if (!res.ok) throw new Error(`the server at ${url} answered ${res.status}: ${await res.text()}`);
  print(await res.json());
}

export const gc: Command = {
  name: "gc",
  usage: `  tessera gc [--data DIR] [--config FILE] [--dry-run] [--grace SECONDS] [--store S]
                                              collect garbage: what no image references leaves the
                                              index, packs and manifests after the grace period
                                              (default gcGraceSeconds, 3600); through the server
                                              when one holds the directory`,
  async run({ values }) {
    const cfg = await storeConfigOf(values);
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
      await gcByServer(cfg.dataDir, e, options);
      return;
    }
    await withService(cfg, "engine", unlock, async ({ engine }) => {
      const bar = progress("items");
      print(await engine.gc({ ...options, onProgress: bar.update }).finally(() => bar.stop()));
    });
  },
};
