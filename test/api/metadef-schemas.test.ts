/**
 * The metadefs schemas Tessera serves are the real Glance Zed's documents, key for key
 * (recorded in docs/reference/glance-zed), on a running server.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { sharedServer } from "../helpers/server.js";

const REFERENCE = join(import.meta.dirname, "../../docs/reference/glance-zed");
const NAMES = [
  "namespace",
  "namespaces",
  "object",
  "objects",
  "property",
  "properties",
  "tag",
  "tags",
  "resource_type",
  "resource_types",
];

const server = sharedServer();

describe("metadefs schemas", () => {
  it.each(NAMES)("GET /v2/schemas/metadefs/%s equals Glance Zed's document", async (name) => {
    const res = await fetch(`${server().url}/v2/schemas/metadefs/${name}`);
    expect(res.status).toBe(200);
    const want = JSON.parse(await readFile(join(REFERENCE, `v2_schemas_metadefs_${name}.json`), "utf8"));
    expect(await res.json()).toStrictEqual(want);
  });
});
