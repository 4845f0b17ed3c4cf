/** `tessera inspect`: an upload's format inspection, on a file or stdin, without a store. */
import { type Command, configOf, print, UsageError } from "../command.js";
import { inspectFile } from "../inspect.js";

export const inspect: Command = {
  name: "inspect",
  usage: `  tessera inspect FILE|- [--disk-format F]    detect a disk image's format and virtual size and
                                              apply the safety rules, for F if given, else for
                                              the detected format (exit status 1 if broken)`,
  async run({ arg, values }) {
    if (!arg) throw new UsageError("inspect needs a file");
    const report = await inspectFile(arg, values["disk-format"], configOf(values).formats);
    print(report);
    if (report.violations.length > 0) process.exitCode = 1;
  },
};
