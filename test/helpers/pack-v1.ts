/**
 * Turns a filesystem store written now into one as Tessera wrote it before chunk checksums:
 * every pack rewritten as version 1 (44-byte entries without sums, docs/format.md), the format
 * record saying pack version 1, and the index rebuilt from those packs (records without sums).
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Engine } from "../../src/engine/engine.js";
import { chunkId } from "../../src/hash/chunk-id.js";
import {
  CHUNK_FLAG_SUM,
  decodeWholePack,
  PACK_FOOTER_BYTES,
  PACK_HEADER_BYTES,
} from "../../src/store/pack-format.js";
import { loseIndex } from "./catalog.js";

const V1_ENTRY_BYTES = 44;

function asVersion1(pack: Buffer): Buffer {
  const entries = decodeWholePack(pack);
  const footer = pack.subarray(pack.length - PACK_FOOTER_BYTES);
  const entriesOffset = Number(footer.readBigUInt64LE(8));
  const table = Buffer.alloc(entries.length * V1_ENTRY_BYTES);
  entries.forEach((e, i) => {
    const at = i * V1_ENTRY_BYTES;
    e.id.copy(table, at);
    table.writeUInt32LE(e.offset, at + 32);
    table.writeUInt32LE(e.length, at + 36);
    table.writeUInt32LE(e.flags & ~CHUNK_FLAG_SUM, at + 40);
  });
  const newFooter = Buffer.from(footer);
  chunkId(table).copy(newFooter, 16, 0, 24);
  const header = Buffer.from(pack.subarray(0, PACK_HEADER_BYTES));
  header.writeUInt32LE(1, 8);
  return Buffer.concat([header, pack.subarray(PACK_HEADER_BYTES, entriesOffset), table, newFooter]);
}

/** `objects` is the store's directory; the engine must be the one open on it. */
export async function makeVersion1(engine: Engine, objects: string): Promise<void> {
  const packs = join(objects, "packs");
  for (const sub of await readdir(packs)) {
    for (const name of await readdir(join(packs, sub))) {
      const file = join(packs, sub, name);
      await writeFile(file, asVersion1(await readFile(file)));
    }
  }
  const formatFile = join(objects, "tessera-store.json");
  const format = { ...JSON.parse(await readFile(formatFile, "utf8")), packVersion: 1 };
  await writeFile(formatFile, JSON.stringify(format));
  await engine.catalog.transact((tx) => tx.setMeta("format", format));
  await loseIndex(engine);
  await engine.rebuildIndex();
}
