/**
 * The offline commands on images, `convert` and `copy-image`: they change image records, so
 * they take the directory's lock. A running server would not see the change in its caches of
 * state: one process per directory.
 */

import type { ServerConfig } from "../../config/server-config.js";
import { lockDir } from "../../engine/dir-lock.js";
import { DEFAULT_CONVERSION_LIMITS } from "../../formats/qemu-img.js";
import type { ImageService } from "../../images/images.js";
import { type Command, intOption, print, storeConfigOf, UsageError } from "../command.js";
import { withService } from "../data-dir.js";

/** Runs `fn` on the image service of a stopped server's directory and prints what it returns. */
async function withImages(cfg: ServerConfig, fn: (images: ImageService) => Promise<unknown>): Promise<void> {
  await withService(cfg, "images", await lockDir(cfg.dataDir), async ({ images }) => print(await fn(images)));
}

export const convert: Command = {
  name: "convert",
  usage: `  tessera convert IMAGE_ID --to FORMAT [--data DIR] [--config FILE]
                  [--cpu-seconds N] [--address-space BYTES]
                                              convert a stored image with qemu-img (raw, qcow2,
                                              vmdk, vhd, vhdx, vdi); the server must be stopped`,
  async run({ arg, values }) {
    const to = values.to;
    if (!arg || !to) throw new UsageError("convert needs an image id and --to FORMAT");
    const cfg = await storeConfigOf(values);
    const limits = {
      cpuSeconds: intOption(values["cpu-seconds"], "cpu-seconds") ?? DEFAULT_CONVERSION_LIMITS.cpuSeconds,
      addressSpaceBytes:
        intOption(values["address-space"], "address-space") ?? DEFAULT_CONVERSION_LIMITS.addressSpaceBytes,
    };
    await withImages(cfg, (images) => images.convert(arg, to, { limits }));
  },
};

export const copyImage: Command = {
  name: "copy-image",
  usage: `  tessera copy-image IMAGE_ID --to STORE [--data DIR] [--config FILE]
                                              copy an image's data into another store, moving only
                                              the chunks it lacks; the server must be stopped`,
  async run({ arg, values }) {
    const to = values.to;
    if (!arg || !to) throw new UsageError("copy-image needs an image id and --to STORE");
    await withImages(await storeConfigOf(values), (images) => images.copyToStore(arg, to));
  },
};
