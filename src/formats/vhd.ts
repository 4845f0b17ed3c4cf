/**
 * VHD (qemu's "vpc"): a big-endian 512-byte footer at the end of the file, copied to the start
 * in dynamic and differencing disks. A fixed disk has the footer only at the end, so the tail
 * is kept. A differencing disk names its parent file on the host, like a qcow2 backing file.
 * https://github.com/qemu/qemu/blob/master/block/vpc.c
 */
import { Inspector, Malformed, startsWith, u64 } from "./inspector.js";

const COOKIE = "conectix";
const DISK_TYPES: Record<number, string> = { 2: "fixed", 3: "dynamic", 4: "differencing" };

export class VhdInspector extends Inspector {
  readonly format = "vhd";
  private readonly head = this.region(0, 512);

  constructor() {
    super();
    this.keepTail(512);
    this.matchInTail = true;
  }

  protected step(): void {
    const h = this.head;
    if (h.length < COOKIE.length) return;
    if (startsWith(h.bytes, COOKIE)) this.match = true;
    else {
      this.settled = true;
      return;
    }
    if (!h.complete) return;
    this.settled = true;
    this.read(h.data, "head");
  }

  protected override end(_total: number, tail: Buffer | undefined): void {
    if (this.match) return;
    if (tail && tail.length === 512 && startsWith(tail, COOKIE)) {
      this.match = true;
      this.read(tail, "tail");
    }
  }

  private read(footer: Buffer, where: string): void {
    const type = footer.readUInt32BE(60);
    const kind = DISK_TYPES[type];
    if (!kind) throw new Malformed(`VHD disk type ${type} is not fixed, dynamic or differencing`);
    this.facts.diskType = kind;
    this.facts.footer = where;
    this.virtualSize = u64(footer, 48, "be");
    if (kind === "differencing")
      this.violate("vhd-differencing", "the VHD is a differencing disk naming a parent file");
  }
}
