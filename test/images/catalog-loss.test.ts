/**
 * The LMDB catalog lost whole (its directory removed): `tessera rebuild-index` brings every
 * image back from the stores' record objects, as it was, its data intact; the image deleted
 * before the loss stays deleted (test/helpers/catalog-loss.ts has the story).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, it } from "vitest";
import { loseAndRestore, twoStores } from "../helpers/catalog-loss.js";

let work: string | undefined;
afterEach(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe("the LMDB catalog lost", () => {
  it("rebuild-index brings back every image with every field, its members, holders and usage, and downloads are intact", async () => {
    work = await mkdtemp(join(tmpdir(), "tessera-loss-"));
    const options = { stores: twoStores(work), gcIntervalSeconds: 0, scrubIntervalSeconds: 0 };
    await loseAndRestore(work, options, async (dataDir) => {
      await rm(join(dataDir, "catalog"), { recursive: true });
      return options;
    });
  }, 180_000);
});
