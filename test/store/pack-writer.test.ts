/**
 * The pack writer's manifest entries and the entry flags readers accept: a manifest rides in
 * the open pack only when there is one with room; a flag bit no reader knows makes the pack
 * unreadable rather than misread.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FsBackend } from "../../src/store/fs-backend.js";
import { packName } from "../../src/store/names.js";
import {
  decodePackEntries,
  decodeWholePack,
  ENTRY_BYTES,
  ENTRY_FLAG_MANIFEST,
  encodePackTrailer,
} from "../../src/store/pack-format.js";
import { PackWriter } from "../../src/store/pack-writer.js";

const MiB = 1024 * 1024;
let dir = "";
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function entriesOf(root: string, id: Buffer) {
  return decodeWholePack(await readFile(join(root, packName(id.toString("hex")))));
}

describe("pack writer", () => {
  it("takes a manifest into the open pack when it fits, and refuses it with no pack open or no room", async () => {
    dir = await mkdtemp(join(tmpdir(), "tessera-pack-"));
    const w = new PackWriter(new FsBackend(dir, { durable: false }), { packSize: MiB });
    const id = Buffer.alloc(32, 7);
    expect(w.addManifest(id, [Buffer.alloc(100)])).toBe(false); // no pack open
    w.add(Buffer.alloc(32, 1), Buffer.alloc(1000, 1));
    expect(w.addManifest(id, [Buffer.alloc(MiB)])).toBe(false); // no room
    expect(w.addManifest(id, [Buffer.from("man"), Buffer.from("ifest")])).toBe(true);
    const [pack] = await w.finish();
    expect(pack?.chunks).toBe(1);
    const entries = await entriesOf(dir, pack?.id as Buffer);
    expect(entries.map((e) => e.flags)).toEqual([0, ENTRY_FLAG_MANIFEST]);
    expect(entries[1]?.length).toBe(8);
  });

  it("refuses entries with flag bits it does not know", () => {
    const trailer = encodePackTrailer([{ id: Buffer.alloc(32), offset: 16, length: 1, flags: 8 }], 17);
    const entries = trailer.subarray(0, ENTRY_BYTES);
    const footer = trailer.subarray(ENTRY_BYTES);
    expect(() => decodePackEntries(entries, footer, ENTRY_BYTES)).toThrow(/unknown flags/);
  });
});
