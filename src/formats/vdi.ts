/**
 * VirtualBox VDI: a little-endian 512-byte header; signature at 0x40, disk size at 0x170.
 * https://github.com/qemu/qemu/blob/master/block/vdi.c
 */
import { Inspector, u64 } from "./inspector.js";

const SIGNATURE = 0xbeda107f;
const IMAGE_TYPES: Record<number, string> = { 1: "dynamic", 2: "static", 3: "undo", 4: "diff" };

export class VdiInspector extends Inspector {
  readonly format = "vdi";
  private readonly header = this.region(0, 512);

  protected step(): void {
    const h = this.header;
    if (!this.headerReady(h, 0x44, (b) => b.readUInt32LE(0x40) === SIGNATURE)) return;
    this.facts.imageType = IMAGE_TYPES[h.data.readUInt32LE(0x4c)] ?? "unknown";
    this.virtualSize = u64(h.data, 0x170, "le");
  }
}
