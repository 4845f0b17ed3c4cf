/**
 * The storage commands on bare objects, below images: `ingest`, `cat`, `stat` and
 * `rebuild-index`. None takes the directory's lock: they may run beside a server.
 */
import { stat as fileStat } from "node:fs/promises";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Engine } from "../../engine/engine.js";
import { readFilePieces } from "../../engine/file-source.js";
import { restoreImageRecords } from "../../images/record-restore.js";
import {
  type Command,
  type CommandInput,
  configOf,
  intOption,
  print,
  storeConfigOf,
  UsageError,
} from "../command.js";
import { NO_LOCK, withService } from "../data-dir.js";
import { progress } from "../progress.js";

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

interface ObjectCommand {
  name: string;
  usage: string;
  /** Whether it takes an argument (a file, a manifest id). */
  takesArg: boolean;
  /**
   * Whether the directory must exist already: "catalog", or "store" (a store's format record
   * will do, for rebuilding a lost catalog); "no" creates it.
   */
  reads: "no" | "catalog" | "store";
  work(engine: Engine, arg: string, input: CommandInput): Promise<void>;
}

/** A command on the engine of the configured directory. */
function objectCommand(c: ObjectCommand): Command {
  return {
    name: c.name,
    usage: c.usage,
    async run(input) {
      const { arg, values } = input;
      if (c.takesArg && !arg) throw new UsageError(`${c.name} needs an argument`);
      const cfg = c.reads === "no" ? configOf(values) : await storeConfigOf(values, c.reads);
      await withService(cfg, "engine", NO_LOCK, ({ engine }) => c.work(engine, arg ?? "", input));
    },
  };
}

export const ingest = objectCommand({
  name: "ingest",
  usage: `  tessera ingest FILE|- [--data DIR] [--store S]
                                              store a file (or stdin); prints the manifest id and stats`,
  takesArg: true,
  reads: "no",
  async work(engine, arg, { values }) {
    const source = arg === "-" ? process.stdin : readFilePieces(arg);
    const total = arg === "-" ? 0 : (await fileStat(arg)).size;
    print(await engine.ingest(counted(source, "ingest", total), { store: values.store }));
  },
});

export const cat = objectCommand({
  name: "cat",
  usage: `  tessera cat MANIFEST_ID [--data DIR] [--start N] [--end N] > FILE
                                              write an object (or the bytes [start, end)) to stdout`,
  takesArg: true,
  reads: "catalog",
  async work(engine, arg, { values }) {
    const { size } = await engine.stat(arg);
    const start = intOption(values.start, "start");
    const end = intOption(values.end, "end");
    const total = (end ?? size) - (start ?? 0);
    await pipeline(counted(engine.read(arg, { start, end }), "cat", total), process.stdout as Writable);
  },
});

export const stat = objectCommand({
  name: "stat",
  usage: "  tessera stat MANIFEST_ID [--data DIR]       print an object's size, hashes and holders",
  takesArg: true,
  reads: "catalog",
  work: async (engine, arg) => print({ manifestId: arg, ...(await engine.stat(arg)) }),
});

export const rebuildIndex = objectCommand({
  name: "rebuild-index",
  usage: `  tessera rebuild-index [--data DIR] [--store S]
                                              rebuild a store's chunk index from its packs, then
                                              the image records the catalog lacks from the
                                              stores' record objects`,
  takesArg: false,
  // How a lost catalog comes back: the store's own format record will do.
  reads: "store",
  async work(engine, _, { values }) {
    const index = await engine.rebuildIndex(values.store);
    // Then the images whose data the catalog now knows again (docs/operations.md).
    print({ ...index, images: await restoreImageRecords(engine) });
  },
});
