/** `tessera stats`: dedup accounting; read-only, so it may run beside a server. */
import { type Command, storeConfigOf, UsageError } from "../command.js";
import { NO_LOCK, withService } from "../data-dir.js";
import { statsText } from "../stats.js";

export const stats: Command = {
  name: "stats",
  usage: `  tessera stats [--data DIR] [--config FILE] [--image ID] [--json]
                                              logical against stored bytes per store (or one
                                              image's unique and shared bytes); a table, or JSON`,
  async run({ values }) {
    await withService(await storeConfigOf(values), "engine", NO_LOCK, async ({ engine }) => {
      const image = values.image ? await engine.catalog.records.getImage(values.image) : undefined;
      if (values.image && !image) throw new UsageError(`no image ${values.image}`);
      process.stdout.write(await statsText(engine, image, values.json === true));
    });
  },
};
