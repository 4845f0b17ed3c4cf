/**
 * Partition tables: a legacy MBR (signature 0xAA55 at 510) and the protective MBR of a GPT
 * disk (one partition of type 0xEE). Both are raw disks to qemu; the checks refuse tables
 * that are malformed in ways a real partitioner never writes, which usually means the
 * content is not the disk it claims to be. A FAT boot sector carries the same signature and
 * is not a partition table.
 * https://uefi.org/specs/UEFI/2.10/05_GUID_Partition_Table_Format.html
 */
import { Inspector } from "./inspector.js";

const PTE = 446;
const PROTECTIVE = 0xee;

export class GptInspector extends Inspector {
  readonly format = "gpt";
  private readonly mbr = this.region(0, 512);

  protected step(): void {
    const m = this.mbr;
    if (!m.complete) return;
    this.settled = true;
    const b = m.data;
    const fat = b[0x10] === 2 && b[0x15] === 0xf8;
    if (b.readUInt16LE(510) !== 0xaa55 || fat) return;
    this.match = true;
    const used: number[] = [];
    let protective = false;
    for (let i = 0; i < 4; i++) {
      const e = PTE + 16 * i;
      const boot = b[e] as number;
      const type = b[e + 4] as number;
      if (boot !== 0x00 && boot !== 0x80) {
        this.violate("mbr-partition-table", `MBR partition ${i} has an invalid boot flag`);
        return;
      }
      if (type !== 0) used.push(i);
      if (type === PROTECTIVE) {
        protective = true;
        // Start CHS 0/2/0 and start LBA 1, as the UEFI specification requires.
        if (b[e + 1] !== 0x00 || b[e + 2] !== 0x02 || b[e + 3] !== 0x00) {
          this.violate("mbr-partition-table", "the GPT protective MBR has an invalid start CHS");
          return;
        }
        if (b.readUInt32LE(e + 8) !== 1) {
          this.violate("mbr-partition-table", "the GPT protective MBR has an invalid start LBA");
          return;
        }
      }
    }
    this.facts.partitionTable = protective ? "gpt" : "mbr";
    this.facts.partitions = used.length;
    if (protective && (used.length !== 1 || used[0] !== 0)) {
      this.violate("mbr-partition-table", "the GPT protective MBR defines extra partitions");
    } else if (used.length === 0) {
      this.violate("mbr-partition-table", "the MBR defines no partitions");
    }
  }

  protected override end(total: number): void {
    this.virtualSize = total;
  }
}
