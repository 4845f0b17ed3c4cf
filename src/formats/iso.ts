/**
 * ISO 9660 (and UDF bridges): 32 KiB of system area the format leaves to anyone (boot code,
 * an MBR, a GPT, or a hostile qcow2 header), then volume descriptors from 32 KiB on. The
 * primary volume descriptor gives the volume size.
 * https://wiki.osdev.org/ISO_9660
 */
import { Inspector } from "./inspector.js";

const DESCRIPTOR = 32 * 1024;
const SIGNATURES = new Set(["CD001", "NSR02", "NSR03"]);

export class IsoInspector extends Inspector {
  readonly format = "iso";
  private readonly descriptor = this.region(DESCRIPTOR, 2048);

  protected step(): void {
    const d = this.descriptor;
    if (!d.complete) return;
    this.settled = true;
    if (!SIGNATURES.has(d.data.subarray(1, 6).toString("latin1"))) return;
    this.match = true;
    // Type 1 is the primary volume descriptor; both-endian fields, the little-endian half first.
    if (d.data[0] === 1 && d.data.subarray(1, 6).toString("latin1") === "CD001") {
      const blocks = d.data.readUInt32LE(80);
      const blockSize = d.data.readUInt16LE(128);
      this.virtualSize = blocks * blockSize;
      this.facts.volumeBlocks = blocks;
      this.facts.blockSize = blockSize;
    }
  }
}
