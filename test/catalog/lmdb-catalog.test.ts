/** The LMDB catalog (the embedded default) against the catalog conformance suite. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openCatalog } from "../../src/catalog/open.js";
import { runCatalogConformance } from "./catalog-conformance.js";

runCatalogConformance("LMDB in a temp directory", async () => {
  const dir = await mkdtemp(join(tmpdir(), "tessera-catalog-"));
  const catalog = await openCatalog(dir);
  return {
    catalog,
    cleanup: async () => {
      await catalog.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
