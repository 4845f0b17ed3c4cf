/**
 * LUKS v1: a big-endian header, then the encrypted payload at payload-offset sectors.
 * https://gitlab.com/cryptsetup/cryptsetup/-/wikis/LUKS-standard/on-disk-format.pdf
 * Only version 1 is accepted, as Glance (qemu reads v1 only for images).
 */
import { Inspector, startsWith } from "./inspector.js";

const MAGIC = Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]);

export class LuksInspector extends Inspector {
  readonly format = "luks";
  private readonly header = this.region(0, 592);
  private payloadBytes = 0;

  protected step(): void {
    const h = this.header;
    if (!this.headerReady(h, MAGIC.length, (b) => startsWith(b, MAGIC))) return;
    const version = h.data.readUInt16BE(6);
    this.facts.version = version;
    this.facts.cipher = h.data.subarray(8, 40).toString("latin1").replace(/\0.*$/s, "");
    if (version !== 1) this.violate("luks-version", `LUKS version ${version} is not supported (only 1)`);
    this.payloadBytes = h.data.readUInt32BE(104) * 512;
  }

  protected override end(total: number): void {
    this.virtualSize = Math.max(0, total - this.payloadBytes);
  }
}
