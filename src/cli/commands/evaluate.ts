/**
 * `tessera evaluate`: the storage evaluation report over a corpus of images; and
 * `evaluate-one`, the child process it runs each configuration in (not for people to call).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Command, print, UsageError } from "../command.js";
import { evaluate as runEvaluation, evaluateOne as runOne } from "../evaluate/evaluate.js";

/** This program's version, as package.json says (dist/src/cli/commands/ is four levels down). */
async function version(): Promise<string> {
  const text = await readFile(new URL("../../../../package.json", import.meta.url), "utf8").catch(() => "{}");
  return (JSON.parse(text) as { version?: string }).version ?? "unknown";
}

export const evaluate: Command = {
  name: "evaluate",
  usage: `  tessera evaluate --corpus DIR [--configs FILE] [--out DIR] [--no-peers]
                                              run the images in DIR through storage configurations
                                              (and casync, restic, borg, zstd where installed) and
                                              write OUT/report.json and OUT/report.html (default
                                              ./evaluation); resumes an interrupted run`,
  async run({ values, argv }) {
    if (!values.corpus) throw new UsageError("evaluate needs --corpus DIR");
    const out = values.out ?? "./evaluation";
    const report = await runEvaluation({
      corpus: values.corpus,
      configsFile: values.configs,
      out,
      peers: values["no-peers"] !== true,
      command: ["tessera", ...argv].join(" "),
      // The children run the command's entry point, main.js, one level up.
      bin: fileURLToPath(new URL("../main.js", import.meta.url)),
      version: await version(),
    });
    print({
      report: join(out, "report.html"),
      json: join(out, "report.json"),
      configs: report.configs.length,
    });
  },
};

export const evaluateOne: Command = {
  name: "evaluate-one",
  usage: "",
  run: ({ values }) => runOne(values.payload ?? ""),
};
