/**
 * qcow2 (and qcow v1, refused): a big-endian header at offset 0.
 * https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.txt
 * A backing file or an external data file makes qemu open another path on the host
 * (CVE-2024-32498); unknown incompatible features mean qemu would read the image in a way we
 * did not check.
 */
import { Inspector, Malformed, startsWith, u64 } from "./inspector.js";
import type { Region } from "./region.js";

const MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]); // "QFI\xfb"
/** Incompatible feature bits qemu knows: dirty, corrupt, external data file, compression type. */
const KNOWN_INCOMPATIBLE = 0b1111n;
const DATA_FILE_BIT = 1n << 2n;
const COMPRESSION_TYPES = ["zlib", "zstd"];

export class Qcow2Inspector extends Inspector {
  readonly format = "qcow2";
  private readonly header: Region = this.region(0, 512);

  protected step(): void {
    const h = this.header;
    if (!this.headerReady(h, 4, (b) => startsWith(b, MAGIC))) return;
    const b = h.data;
    const version = b.readUInt32BE(4);
    const backingOffset = b.readBigUInt64BE(8);
    const clusterBits = b.readUInt32BE(20);
    this.facts.version = version;
    this.facts.clusterBits = clusterBits;
    this.facts.encrypted = b.readUInt32BE(32) !== 0;
    if (version !== 2 && version !== 3) {
      this.violate("qcow2-version", `qcow version ${version} is not supported (only 2 and 3)`);
      return;
    }
    if (clusterBits < 9 || clusterBits > 21)
      throw new Malformed(`qcow2 cluster_bits ${clusterBits} is out of range`);
    this.virtualSize = u64(b, 24, "be");
    if (backingOffset !== 0n) {
      this.facts.backingFile = true;
      this.violate("qcow2-backing-file", "the qcow2 image names a backing file");
    }
    if (version === 3) {
      const incompatible = b.readBigUInt64BE(72);
      const headerLength = b.readUInt32BE(100);
      this.facts.incompatibleFeatures = `0x${incompatible.toString(16)}`;
      if (headerLength < 104 || headerLength > 512)
        throw new Malformed(`qcow2 header_length ${headerLength}`);
      if (incompatible & DATA_FILE_BIT) {
        this.facts.dataFile = true;
        this.violate("qcow2-data-file", "the qcow2 image uses an external data file");
      }
      if (incompatible & ~KNOWN_INCOMPATIBLE) {
        this.violate(
          "qcow2-unknown-features",
          `the qcow2 image sets unknown incompatible feature bits (0x${(incompatible & ~KNOWN_INCOMPATIBLE).toString(16)})`,
        );
      }
      // The compression type byte exists only in headers long enough to hold it.
      const compression = headerLength > 104 ? b[104] : 0;
      this.facts.compressionType = COMPRESSION_TYPES[compression] ?? `unknown (${compression})`;
      if (compression >= COMPRESSION_TYPES.length)
        throw new Malformed(`qcow2 compression type ${compression}`);
    }
  }
}
