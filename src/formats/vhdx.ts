/**
 * VHDX: little-endian, found through GUIDs. The file identifier at 0, the region table at
 * 192 KiB names the metadata region; its table names the virtual disk size item (and, in a
 * differencing disk, a parent locator naming a host file).
 * https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-vhdx/
 */
import { Inspector, Malformed, startsWith, u64 } from "./inspector.js";
import type { Region } from "./region.js";

/** A GUID as stored on disk: the first three fields little-endian, the rest as written. */
function guid(text: string): Buffer {
  const h = text.replace(/-/g, "");
  const b = Buffer.from(h, "hex");
  return Buffer.concat([
    Buffer.from(b.subarray(0, 4)).reverse(),
    Buffer.from(b.subarray(4, 6)).reverse(),
    Buffer.from(b.subarray(6, 8)).reverse(),
    b.subarray(8),
  ]);
}

const METADATA_REGION = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E");
const VIRTUAL_DISK_SIZE = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8");
const PARENT_LOCATOR = guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C");
const REGION_TABLE = 192 * 1024;
/** Both tables hold at most 2047 entries after a 32-byte (metadata) or 16-byte (region) header. */
const MAX_ENTRIES = 2047;
const TABLE_BYTES = 32 * 2048;

export class VhdxInspector extends Inspector {
  readonly format = "vhdx";
  private readonly ident = this.region(0, 8);
  private readonly regionTable = this.region(REGION_TABLE, TABLE_BYTES);
  private metadata?: Region;
  private sizeItem?: Region;

  protected step(): void {
    if (!this.match) {
      if (!this.ident.complete) return;
      if (!startsWith(this.ident.data, "vhdxfile")) {
        this.settled = true;
        return;
      }
      this.match = true;
    }
    if (!this.regionTable.complete) return;
    this.metadata ??= this.findMetadata(this.regionTable.data);
    if (!this.metadata.complete) return;
    this.sizeItem ??= this.findSizeItem(this.metadata);
    if (!this.sizeItem.complete) return;
    this.virtualSize = u64(this.sizeItem.data, 0, "le");
    this.settled = true;
  }

  private findMetadata(t: Buffer): Region {
    if (!startsWith(t, "regi")) throw new Malformed("VHDX region table signature not found");
    const count = t.readUInt32LE(8);
    if (count > MAX_ENTRIES) throw new Malformed(`VHDX region count ${count} exceeds ${MAX_ENTRIES}`);
    for (let i = 0; i < count; i++) {
      const e = 16 + i * 32;
      if (t.subarray(e, e + 16).equals(METADATA_REGION))
        return this.region(u64(t, e + 16, "le"), TABLE_BYTES);
    }
    throw new Malformed("VHDX has no metadata region");
  }

  private findSizeItem(m: Region): Region {
    const t = m.data;
    if (!startsWith(t, "metadata")) throw new Malformed("VHDX metadata table signature not found");
    const count = t.readUInt16LE(10);
    if (count > MAX_ENTRIES) throw new Malformed(`VHDX metadata entry count ${count} exceeds ${MAX_ENTRIES}`);
    let size: Region | undefined;
    for (let i = 0; i < count; i++) {
      const e = 32 + i * 32;
      const id = t.subarray(e, e + 16);
      if (id.equals(PARENT_LOCATOR)) {
        this.facts.parentLocator = true;
        this.violate("vhdx-parent", "the VHDX is a differencing disk with a parent locator");
      }
      if (id.equals(VIRTUAL_DISK_SIZE) && !size) {
        const offset = t.readUInt32LE(e + 16);
        const length = t.readUInt32LE(e + 20);
        if (length < 8) throw new Malformed(`VHDX virtual disk size item is ${length} bytes`);
        size = this.region(m.offset + offset, 8);
      }
    }
    if (!size) throw new Malformed("VHDX has no virtual disk size item");
    return size;
  }
}
