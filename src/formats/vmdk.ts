/**
 * VMDK: either a hosted sparse extent (magic "KDMV", a little-endian header, a text descriptor
 * embedded at sector 1) or a bare text descriptor whose extents are other files. The
 * descriptor is where CVE-2022-47951 lived: extents naming /etc/passwd that qemu then reads
 * into the guest. Every descriptor line must be of a known kind, no extent may name a path,
 * a bare descriptor (all of whose extents are other files) is refused, and only allow-listed
 * create types pass. streamOptimized images may keep the real header in a footer; both
 * copies must then agree.
 * https://github.com/qemu/qemu/blob/master/block/vmdk.c, VMware's "Virtual Disk Format 5.0".
 */
import { Inspector, Malformed, startsWith, u64 } from "./inspector.js";
import { MAX_REGION, type Region } from "./region.js";

const DESCRIPTOR_OFFSET = 512;
const GD_AT_END = 0xffffffffffffffffn;
const MARKER_EOS = 0;
const MARKER_FOOTER = 3;
const EXTENT_ACCESS = new Set(["rw", "rdonly", "noaccess"]);

export interface VmdkOptions {
  /** createType values accepted (compared case-insensitively). */
  createTypes: readonly string[];
}

export class VmdkInspector extends Inspector {
  readonly format = "vmdk";
  private readonly header = this.region(0, 512);
  private descriptor?: Region;
  private sparse = false;
  private footer = false;
  private descriptorRead = false;

  constructor(private readonly options: VmdkOptions) {
    super();
  }

  protected step(): void {
    if (!this.descriptor) {
      const h = this.header;
      if (h.length < 4) return;
      if (startsWith(h.bytes, "KDMV")) {
        this.match = true;
        if (!h.complete) return;
        this.readSparseHeader(h.data);
      } else if (isText(h.bytes)) {
        // Perhaps a bare descriptor: it is one if it says createType, which a short stream
        // may only show at its end.
        this.matchInTail = true;
        if (!h.complete) return;
        this.descriptor = this.region(0, MAX_REGION - 1);
      } else {
        this.matchInTail = false;
        this.settled = true;
        return;
      }
    }
    const d = this.descriptor as Region;
    if (!d.complete) return;
    this.settled = true;
    this.readDescriptor(d.data);
  }

  protected override end(_total: number, tail: Buffer | undefined): void {
    if (!this.sparse && !this.descriptorRead) {
      const text = (this.descriptor ?? this.header).bytes;
      if (isText(text.subarray(0, 512))) this.readDescriptor(text);
    }
    if (this.footer) this.checkFooter(tail ?? Buffer.alloc(0));
  }

  /** Offsets per qemu's VMDK4Header. */
  private readSparseHeader(h: Buffer): void {
    this.sparse = true;
    const version = h.readUInt32LE(4);
    if (version < 1 || version > 3) throw new Malformed(`VMDK version ${version} is not supported`);
    const descSector = u64(h, 28, "le");
    const descSectors = u64(h, 36, "le");
    if (descSector * 512 !== DESCRIPTOR_OFFSET)
      throw new Malformed("Wrong descriptor location in the VMDK header");
    if (descSectors === 0) throw new Malformed("the VMDK header declares no descriptor");
    this.virtualSize = u64(h, 12, "le") * 512;
    if (h.readBigUInt64LE(56) === GD_AT_END) {
      this.footer = true;
      this.keepTail(1536);
    }
    this.descriptor = this.region(DESCRIPTOR_OFFSET, Math.min(descSectors * 512, MAX_REGION - 1));
  }

  private readDescriptor(raw: Buffer): void {
    if (this.descriptorRead) return;
    this.descriptorRead = true;
    const nul = raw.indexOf(0);
    const bytes = nul >= 0 ? raw.subarray(0, nul) : raw;
    // Descriptors are ASCII; qemu compares keys case-insensitively.
    const original = bytes.toString("latin1");
    const text = original.toLowerCase();
    const m = /createtype\s*=\s*"([^"\n]{0,64})"/i.exec(original);
    if (!this.sparse) {
      if (!m) {
        this.matchInTail = false; // Text, but not a VMDK descriptor.
        return;
      }
      this.match = true;
    }
    const createType = m?.[1] ?? "";
    this.facts.createType = createType || "(none)";
    if (!this.options.createTypes.some((t) => t.toLowerCase() === createType.toLowerCase())) {
      this.violate("vmdk-create-type", `VMDK create type "${createType || "(none)"}" is not allowed`);
    }
    if (/[^\t\n\r\x20-\x7e]/.test(text)) {
      this.violate("vmdk-descriptor", "the VMDK descriptor is not ASCII text");
      return;
    }
    const extents: string[] = [];
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (line === "" || line.startsWith("#") || line.startsWith("ddb")) continue;
      const eq = line.indexOf("=");
      if (eq > 0 && !/\s/.test(line.slice(0, eq))) continue; // key=value
      if (EXTENT_ACCESS.has(line.split(/\s+/)[0] as string)) {
        extents.push(line);
        continue;
      }
      this.violate(
        "vmdk-descriptor",
        `the VMDK descriptor has a line of unknown kind: ${JSON.stringify(line.slice(0, 80))}`,
      );
      return;
    }
    this.facts.extents = extents.length;
    if (extents.length === 0) this.violate("vmdk-descriptor", "the VMDK descriptor lists no extents");
    if (extents.some((e) => /[/\\]/.test(e))) {
      this.violate("vmdk-extent-file", "a VMDK extent names a path");
    } else if (!this.sparse && extents.length > 0) {
      this.violate("vmdk-extent-file", "a bare VMDK descriptor's extents are files outside the image");
    } else if (this.sparse && extents.length > 1) {
      this.violate("vmdk-extent-file", "a single-file VMDK lists more than one extent");
    }
  }

  /** The footer marker, a copy of the header, and the end-of-stream marker, per qemu. */
  private checkFooter(tail: Buffer): void {
    const why = footerProblem(this.header.data, tail);
    if (why) this.violate("vmdk-footer", why);
    else this.virtualSize = u64(tail, 512 + 12, "le") * 512;
  }
}

function footerProblem(h: Buffer, tail: Buffer): string | undefined {
  if (tail.length < 1536) return "the VMDK is too short to hold its footer";
  const f = tail.subarray(512, 1024);
  if (!f.subarray(0, 4).equals(h.subarray(0, 4))) return "VMDK header and footer signature do not match";
  if (f.readUInt32LE(4) !== h.readUInt32LE(4)) return "VMDK header and footer versions do not match";
  if (!f.subarray(28, 44).equals(h.subarray(28, 44)))
    return "the VMDK footer specifies a different descriptor";
  if (f.readBigUInt64LE(56) === GD_AT_END) return "the VMDK footer indicates another footer";
  if (!isMarker(tail.subarray(0, 512), MARKER_FOOTER)) return "the VMDK footer marker is invalid";
  if (!isMarker(tail.subarray(1024), MARKER_EOS) || tail.readBigUInt64LE(1024) !== 0n) {
    return "the VMDK end-of-stream marker is invalid";
  }
  return undefined;
}

function isMarker(m: Buffer, type: number): boolean {
  return m.readUInt32LE(8) === 0 && m.readUInt32LE(12) === type && m.subarray(16).every((b) => b === 0);
}

/** Printable ASCII and whitespace only, as a text descriptor must be. */
function isText(b: Buffer): boolean {
  for (const c of b) if (!(c === 9 || c === 10 || c === 13 || (c >= 0x20 && c < 0x7f))) return false;
  return true;
}
