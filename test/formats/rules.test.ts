/**
 * Each safety rule refuses what it is for, on real images made hostile by the few bytes an
 * attacker would change, or made by qemu-img itself where it will. Each rule can be switched
 * off by name, and then only that rule stops firing. The cases follow oslo.utils'
 * format_inspector tests (Glance's inspector) and are decided the same way.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { inspectAll, inspectStream } from "../../src/formats/inspect-stream.js";
import type { RuleName } from "../../src/formats/inspector.js";
import { DEFAULT_FORMAT_POLICY, type FormatPolicy, FormatRejectedError } from "../../src/formats/rules.js";
import {
  makeBackedQcow2,
  makeIso,
  makeLuks,
  makePartitioned,
  makeRawData,
  qemuCreate,
  tamper,
  u32be,
  u32le,
  u64be,
  u64le,
  useScratchDir,
  withAppended,
} from "../helpers/disk-images.js";
import { requireTools, type Tool } from "../helpers/tools.js";

const MiB = 1024 * 1024;
let dir = "";
useScratchDir("tessera-rules-", (d) => {
  dir = d;
});

async function* pieces(path: string, size = 65536): AsyncGenerator<Uint8Array> {
  const b = readFileSync(path);
  for (let at = 0; at < b.length; at += size) yield b.subarray(at, at + size);
}

async function rulesBroken(path: string, declared: string, policy: FormatPolicy = DEFAULT_FORMAT_POLICY) {
  const { violations } = await inspectAll(pieces(path), declared, policy);
  return [...new Set(violations.map((v) => v.rule))].sort();
}

function without(rule: RuleName): FormatPolicy {
  return { ...DEFAULT_FORMAT_POLICY, rules: { ...DEFAULT_FORMAT_POLICY.rules, [rule]: false } };
}

/** A monolithicSparse VMDK made by qemu-img with its embedded descriptor replaced by `text`. */
function vmdkWithDescriptor(name: string, text: string): string {
  const src = qemuCreate(dir, `${name}.src.vmdk`, "vmdk", 10 * MiB);
  const b = readFileSync(src);
  const sectors = Number(b.readBigUInt64LE(36));
  const desc = Buffer.alloc(sectors * 512);
  desc.write(text, "latin1");
  return tamper(src, dir, name, [[512, desc]]);
}

const GOOD_DESCRIPTOR = [
  "# Disk DescriptorFile",
  "version=1",
  "CID=12345678",
  "parentCID=ffffffff",
  'createType="monolithicSparse"',
  "",
  "# Extent description",
  'RW 20480 SPARSE "disk.vmdk"',
  "",
  'ddb.virtualHWVersion = "4"',
];
const descriptor = (edit: (lines: string[]) => string[]) => edit([...GOOD_DESCRIPTOR]).join("\n");

function guidBytes(text: string): Buffer {
  const b = Buffer.from(text.replace(/-/g, ""), "hex");
  return Buffer.concat([
    Buffer.from(b.subarray(0, 4)).reverse(),
    Buffer.from(b.subarray(4, 6)).reverse(),
    Buffer.from(b.subarray(6, 8)).reverse(),
    b.subarray(8),
  ]);
}

/** A VHDX made by qemu-img with a parent locator item added to its metadata table. */
function vhdxWithParent(): string {
  const path = qemuCreate(dir, "parent.vhdx", "vhdx", 64 * MiB);
  const b = Buffer.from(readFileSync(path));
  const table = 192 * 1024;
  const meta = guidBytes("8B7CA206-4790-4B9A-B8FE-575F050F886E");
  let metaOffset = -1;
  for (let i = 0; i < b.readUInt32LE(table + 8); i++) {
    const e = table + 16 + i * 32;
    if (b.subarray(e, e + 16).equals(meta)) metaOffset = Number(b.readBigUInt64LE(e + 16));
  }
  const count = b.readUInt16LE(metaOffset + 10);
  const entry = metaOffset + 32 + count * 32;
  b.set(guidBytes("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C"), entry);
  b.writeUInt32LE(65536, entry + 16);
  b.writeUInt32LE(512, entry + 20);
  b.writeUInt16LE(count + 1, metaOffset + 10);
  writeFileSync(path, b);
  return path;
}

/** An MBR with one partition table entry set per call, as oslo's test_gpt_mbr_check builds them. */
function mbr(
  name: string,
  entries: { n?: number; boot?: number; type?: number; startH?: number; lba?: number }[],
) {
  const src = makePartitioned(dir, `${name}.src`, "dos", MiB);
  const b = Buffer.from(readFileSync(src));
  b.fill(0, 446, 510);
  for (const { n = 0, boot = 0, type = 0xee, startH = 2, lba = 1 } of entries) {
    const e = 446 + 16 * n;
    b[e] = boot;
    b[e + 1] = 0;
    b[e + 2] = startH;
    b[e + 3] = 0;
    b[e + 4] = type;
    b.writeUInt32LE(lba, e + 8);
  }
  const path = join(dir, name);
  writeFileSync(path, b);
  return path;
}

interface Case {
  what: string;
  declared: string;
  /** The programs make() runs. */
  tools: Tool[];
  make: () => string;
  /** Every rule the content breaks. */
  broken: RuleName[];
}

const cases: Case[] = [
  // qcow2
  {
    what: "a qcow2 with a backing file (qemu-img -b)",
    declared: "qcow2",
    tools: ["qemu-img"],
    make: () => makeBackedQcow2(dir, "backed.qcow2", 10 * MiB),
    broken: ["qcow2-backing-file"],
  },
  {
    what: "a qcow2 with an external data file (CVE-2024-32498)",
    declared: "qcow2",
    tools: ["qemu-img"],
    make: () =>
      qemuCreate(dir, "datafile.qcow2", "qcow2", 10 * MiB, [
        "-o",
        `data_file=${join(dir, "data.bin")},data_file_raw=on`,
      ]),
    broken: ["qcow2-data-file"],
  },
  {
    what: "a qcow2 with extended L2 entries, an incompatible feature Glance does not know",
    declared: "qcow2",
    tools: ["qemu-img"],
    make: () => qemuCreate(dir, "extl2.qcow2", "qcow2", 10 * MiB, ["-o", "extended_l2=on"]),
    broken: ["qcow2-unknown-features"],
  },
  {
    what: "a qcow2 with the highest incompatible feature bit set",
    declared: "qcow2",
    tools: ["qemu-img"],
    make: () =>
      tamper(qemuCreate(dir, "f.qcow2", "qcow2", MiB), dir, "f-hi.qcow2", [[0x48, Buffer.from([1])]]),
    broken: ["qcow2-unknown-features"],
  },
  {
    what: "a qcow2 with bit 7 of the lowest feature byte set",
    declared: "qcow2",
    tools: ["qemu-img"],
    make: () =>
      tamper(qemuCreate(dir, "g.qcow2", "qcow2", MiB), dir, "g-b7.qcow2", [[0x4f, Buffer.from([0x80])]]),
    broken: ["qcow2-unknown-features"],
  },
  {
    what: "a qcow2 v1 header",
    declared: "qcow2",
    tools: ["qemu-img"],
    make: () => tamper(qemuCreate(dir, "h.qcow2", "qcow2", MiB), dir, "v1.qcow2", [[4, u32be(1)]]),
    broken: ["qcow2-version"],
  },
  {
    what: "a qcow2 v4 header",
    declared: "qcow2",
    tools: ["qemu-img"],
    make: () => tamper(qemuCreate(dir, "i.qcow2", "qcow2", MiB), dir, "v4.qcow2", [[4, u32be(4)]]),
    broken: ["qcow2-version"],
  },
  {
    what: "a qcow2 claiming an absurd virtual size (2^63)",
    declared: "qcow2",
    tools: ["qemu-img"],
    make: () => tamper(qemuCreate(dir, "j.qcow2", "qcow2", MiB), dir, "huge.qcow2", [[24, u64be(1n << 63n)]]),
    broken: ["malformed-header"],
  },
  {
    what: "a qcow2 with a cluster size of 2^40",
    declared: "qcow2",
    tools: ["qemu-img"],
    make: () => tamper(qemuCreate(dir, "k.qcow2", "qcow2", MiB), dir, "cluster.qcow2", [[20, u32be(40)]]),
    broken: ["malformed-header"],
  },
  {
    what: "a qcow2 header truncated to 100 bytes",
    declared: "qcow2",
    tools: ["qemu-img"],
    make: () => {
      const path = join(dir, "short.qcow2");
      writeFileSync(path, readFileSync(qemuCreate(dir, "l.qcow2", "qcow2", MiB)).subarray(0, 100));
      return path;
    },
    broken: ["malformed-header"],
  },
  // vmdk
  {
    what: "a VMDK whose descriptor names /etc/passwd (CVE-2022-47951)",
    declared: "vmdk",
    tools: ["qemu-img"],
    make: () =>
      vmdkWithDescriptor(
        "passwd.vmdk",
        descriptor((l) => l.map((x) => (x.startsWith("RW") ? 'RW 2048 FLAT "/etc/passwd" 0' : x))),
      ),
    broken: ["vmdk-extent-file"],
  },
  {
    what: "a bare VMDK descriptor file whose flat extent is /etc/passwd",
    declared: "vmdk",
    tools: [],
    make: () => {
      const path = join(dir, "bare.vmdk");
      writeFileSync(
        path,
        descriptor((l) =>
          l.map((x) =>
            x
              .replace("monolithicSparse", "monolithicFlat")
              .replace('SPARSE "disk.vmdk"', 'FLAT "/etc/passwd" 0'),
          ),
        ),
      );
      return path;
    },
    broken: ["vmdk-create-type", "vmdk-extent-file"],
  },
  {
    what: "a bare VMDK descriptor naming a file beside it (qemu follows extents of bare descriptors)",
    declared: "vmdk",
    tools: [],
    make: () => {
      const path = join(dir, "bare2.vmdk");
      writeFileSync(
        path,
        descriptor((l) => l),
      );
      return path;
    },
    broken: ["vmdk-extent-file"],
  },
  {
    what: "a monolithicFlat VMDK made by qemu-img (descriptor plus a flat file)",
    declared: "vmdk",
    tools: ["qemu-img"],
    make: () => qemuCreate(dir, "flat.vmdk", "vmdk", 10 * MiB, ["-o", "subformat=monolithicFlat"]),
    broken: ["vmdk-create-type", "vmdk-extent-file"],
  },
  {
    what: "a twoGbMaxExtentSparse VMDK made by qemu-img (descriptor plus sparse extent files)",
    declared: "vmdk",
    tools: ["qemu-img"],
    make: () => qemuCreate(dir, "split.vmdk", "vmdk", 10 * MiB, ["-o", "subformat=twoGbMaxExtentSparse"]),
    broken: ["vmdk-create-type", "vmdk-extent-file"],
  },
  {
    what: "a VMDK descriptor with a line of unknown kind",
    declared: "vmdk",
    tools: ["qemu-img"],
    make: () =>
      vmdkWithDescriptor(
        "unknown-line.vmdk",
        descriptor((l) => [...l, "wronly 2048 somefile2.vmdk"]),
      ),
    broken: ["vmdk-descriptor"],
  },
  {
    what: "a VMDK descriptor with createType written without '='",
    declared: "vmdk",
    tools: ["qemu-img"],
    make: () =>
      vmdkWithDescriptor(
        "no-eq.vmdk",
        descriptor((l) =>
          l.map((x) => x.replace('createType="monolithicSparse"', "createType monolithicFlat")),
        ),
      ),
    broken: ["vmdk-create-type", "vmdk-descriptor"],
  },
  {
    what: "a VMDK descriptor with no extents",
    declared: "vmdk",
    tools: ["qemu-img"],
    make: () =>
      vmdkWithDescriptor(
        "no-extent.vmdk",
        descriptor((l) => l.filter((x) => !x.startsWith("RW"))),
      ),
    broken: ["vmdk-descriptor"],
  },
  {
    what: "a single-file VMDK listing two extents",
    declared: "vmdk",
    tools: ["qemu-img"],
    make: () =>
      vmdkWithDescriptor(
        "two-extents.vmdk",
        descriptor((l) => [...l, 'RW 2048 SPARSE "other.vmdk"']),
      ),
    broken: ["vmdk-extent-file"],
  },
  {
    what: "a VMDK whose header moves the descriptor (oslo: Wrong descriptor location)",
    declared: "vmdk",
    tools: ["qemu-img"],
    make: () => tamper(qemuCreate(dir, "m.vmdk", "vmdk", 10 * MiB), dir, "moved.vmdk", [[0x1c, u64le(2n)]]),
    broken: ["malformed-header"],
  },
  {
    what: "a VMDK of unknown version",
    declared: "vmdk",
    tools: ["qemu-img"],
    make: () => tamper(qemuCreate(dir, "n.vmdk", "vmdk", 10 * MiB), dir, "v9.vmdk", [[4, u32le(9)]]),
    broken: ["malformed-header"],
  },
  {
    what: "a streamOptimized VMDK announcing a footer that is all zeroes",
    declared: "vmdk",
    tools: ["qemu-img"],
    make: () => {
      const src = qemuCreate(dir, "o.vmdk", "vmdk", 10 * MiB, ["-o", "subformat=streamOptimized"]);
      const t = tamper(src, dir, "o-gd.vmdk", [[56, u64le(0xffffffffffffffffn)]]);
      return withAppended(t, dir, "zero-footer.vmdk", Buffer.alloc(1536));
    },
    broken: ["vmdk-footer"],
  },
  // polyglots and mismatches
  {
    what: "an ISO with a qcow2 header in its system area (declared iso)",
    declared: "iso",
    tools: ["qemu-img", "xorriso"],
    make: () => polyglotIso(),
    broken: ["polyglot", "qcow2-backing-file"],
  },
  {
    what: "an ISO with a qcow2 header in its system area (declared qcow2)",
    declared: "qcow2",
    tools: ["qemu-img", "xorriso"],
    make: () => polyglotIso(),
    broken: ["polyglot", "qcow2-backing-file"],
  },
  {
    what: "raw data declared as qcow2",
    declared: "qcow2",
    tools: [],
    make: () => makeRawData(dir, "data.raw", 2 * MiB),
    broken: ["format-mismatch"],
  },
  {
    what: "a qcow2 declared as vmdk",
    declared: "vmdk",
    tools: ["qemu-img"],
    make: () => qemuCreate(dir, "p.qcow2", "qcow2", MiB),
    broken: ["format-mismatch"],
  },
  {
    what: "a qcow2 declared as raw",
    declared: "raw",
    tools: ["qemu-img"],
    make: () => qemuCreate(dir, "q.qcow2", "qcow2", MiB),
    broken: ["raw-over-formatted"],
  },
  {
    what: "a vmdk declared as ami",
    declared: "ami",
    tools: ["qemu-img"],
    make: () => qemuCreate(dir, "r.vmdk", "vmdk", MiB),
    broken: ["raw-over-formatted"],
  },
  {
    what: "a LUKS image declared as raw",
    declared: "raw",
    tools: ["qemu-img"],
    make: () => makeLuks(dir, "s.luks", MiB),
    broken: ["raw-over-formatted"],
  },
  // the others
  {
    what: "a differencing VHD (its parent is a host file)",
    declared: "vhd",
    tools: ["qemu-img"],
    make: () => tamper(qemuCreate(dir, "t.vhd", "vpc", 10 * MiB), dir, "diff.vhd", [[60, u32be(4)]]),
    broken: ["vhd-differencing"],
  },
  {
    what: "a VHDX with a parent locator",
    declared: "vhdx",
    tools: ["qemu-img"],
    make: () => vhdxWithParent(),
    broken: ["vhdx-parent"],
  },
  {
    what: "a VHDX whose region table signature is gone",
    declared: "vhdx",
    tools: ["qemu-img"],
    make: () =>
      tamper(qemuCreate(dir, "u.vhdx", "vhdx", 10 * MiB), dir, "noregion.vhdx", [
        [192 * 1024, Buffer.from("xxxx")],
      ]),
    broken: ["malformed-header"],
  },
  {
    what: "a QED image (qemu-img), always refused",
    declared: "raw",
    tools: ["qemu-img"],
    make: () => qemuCreate(dir, "v.qed", "qed", 10 * MiB),
    broken: ["qed-banned", "raw-over-formatted"],
  },
  {
    what: "a LUKS version 2 header",
    declared: "raw",
    tools: ["qemu-img"],
    make: () => tamper(makeLuks(dir, "w.luks", MiB), dir, "v2.luks", [[6, Buffer.from([0, 2])]]),
    broken: ["luks-version", "raw-over-formatted"],
  },
  {
    what: "an MBR partition with an invalid boot flag",
    declared: "raw",
    tools: ["sfdisk"],
    make: () => mbr("bootflag.raw", [{ boot: 0x0a }]),
    broken: ["mbr-partition-table"],
  },
  {
    what: "an MBR with no partitions",
    declared: "raw",
    tools: ["sfdisk"],
    make: () => mbr("empty.raw", [{ type: 0 }]),
    broken: ["mbr-partition-table"],
  },
  {
    what: "a GPT protective MBR with extra partitions",
    declared: "raw",
    tools: ["sfdisk"],
    make: () => mbr("extra.raw", [{}, { n: 1 }]),
    broken: ["mbr-partition-table"],
  },
  {
    what: "a GPT protective MBR with an invalid start CHS",
    declared: "raw",
    tools: ["sfdisk"],
    make: () => mbr("chs.raw", [{ startH: 1 }]),
    broken: ["mbr-partition-table"],
  },
  {
    what: "a GPT protective MBR with an invalid start LBA",
    declared: "raw",
    tools: ["sfdisk"],
    make: () => mbr("lba.raw", [{ lba: 2 }]),
    broken: ["mbr-partition-table"],
  },
];

/** oslo's _generate_bad_iso: the first 32 KiB of a qcow2 (with a backing file), then an ISO. */
function polyglotIso(): string {
  const qcow = readFileSync(makeBackedQcow2(dir, "poly.qcow2", 10 * MiB));
  const iso = Buffer.from(readFileSync(makeIso(dir, "poly.iso")));
  iso.set(qcow.subarray(0, 32 * 1024), 0);
  const path = join(dir, "polyglot.iso");
  writeFileSync(path, iso);
  return path;
}

describe("safety rules", () => {
  for (const c of cases) {
    it(`refuses ${c.what}: ${c.broken.join(", ")}; each rule can be switched off alone`, async (ctx) => {
      requireTools(ctx, c.tools);
      const path = c.make();
      expect(await rulesBroken(path, c.declared)).toEqual([...c.broken].sort());
      for (const rule of c.broken) {
        expect(await rulesBroken(path, c.declared, without(rule))).toEqual(
          c.broken.filter((r) => r !== rule).sort(),
        );
      }
    });
  }

  it("passes a qcow2 with only the dirty bit set, and a v2 qcow2 whatever lies where v3 keeps feature bits", async (ctx) => {
    requireTools(ctx, ["qemu-img"]);
    const dirty = tamper(qemuCreate(dir, "x.qcow2", "qcow2", MiB), dir, "dirty.qcow2", [
      [0x4f, Buffer.from([1])],
    ]);
    expect(await rulesBroken(dirty, "qcow2")).toEqual([]);
    const v2 = qemuCreate(dir, "y.qcow2", "qcow2", MiB, ["-o", "compat=0.10"]);
    const v2junk = tamper(v2, dir, "v2junk.qcow2", [[0x48, Buffer.alloc(8, 0xff)]]);
    expect(await rulesBroken(v2junk, "qcow2")).toEqual([]);
  });

  it("passes a VMDK descriptor with comments, ddb lines and key=value headers (oslo's good descriptor)", async (ctx) => {
    requireTools(ctx, ["qemu-img"]);
    expect(
      await rulesBroken(
        vmdkWithDescriptor(
          "good.vmdk",
          descriptor((l) => l),
        ),
        "vmdk",
      ),
    ).toEqual([]);
  });

  it("passes a streamOptimized VMDK whose footer is a faithful copy of its header (oslo's test_vmdk_with_footer)", async (ctx) => {
    requireTools(ctx, ["qemu-img"]);
    const src = qemuCreate(dir, "z.vmdk", "vmdk", 10 * MiB, ["-o", "subformat=streamOptimized"]);
    const header = Buffer.from(readFileSync(src).subarray(0, 512));
    const withFlag = tamper(src, dir, "z-gd.vmdk", [[56, u64le(0xffffffffffffffffn)]]);
    const footer = Buffer.alloc(1536);
    footer.writeUInt32LE(3, 12); // footer marker
    footer.set(header, 512); // the header copy, with its real grain directory offset
    expect(await rulesBroken(withAppended(withFlag, dir, "footer.vmdk", footer), "vmdk")).toEqual([]);
    footer.writeBigUInt64LE(0xffffffffffffffffn, 512 + 56);
    expect(await rulesBroken(withAppended(withFlag, dir, "footer2.vmdk", footer), "vmdk")).toEqual([
      "vmdk-footer",
    ]);
  });

  it("accepts other VMDK create types only when configured to, and still refuses their extents", async (ctx) => {
    requireTools(ctx, ["qemu-img"]);
    const flat = qemuCreate(dir, "flat2.vmdk", "vmdk", MiB, ["-o", "subformat=monolithicFlat"]);
    const policy = { ...DEFAULT_FORMAT_POLICY, vmdkCreateTypes: ["monolithicFlat"] };
    expect(await rulesBroken(flat, "vmdk", policy)).toEqual(["vmdk-extent-file"]);
    const sparse = qemuCreate(dir, "sparse2.vmdk", "vmdk", MiB);
    expect(await rulesBroken(sparse, "vmdk", policy)).toEqual(["vmdk-create-type"]);
  });

  it("refuses a hostile header at once, without reading the rest of the stream", async (ctx) => {
    requireTools(ctx, ["qemu-img"]);
    const backed = readFileSync(makeBackedQcow2(dir, "early.qcow2", 10 * MiB));
    let pulled = 0;
    async function* endless(): AsyncGenerator<Uint8Array> {
      yield backed.subarray(0, 65536);
      // Bounded, so that a missed rejection fails the test instead of hanging it.
      while (pulled < 1000) {
        pulled++;
        yield Buffer.alloc(65536);
      }
    }
    const s = inspectStream(endless(), "qcow2", DEFAULT_FORMAT_POLICY);
    const err = await (async () => {
      for await (const _ of s.pieces);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatRejectedError);
    expect((err as FormatRejectedError).message).toContain("[qcow2-backing-file]");
    expect(pulled).toBe(0);
  });

  it("refuses content that is not the declared format as soon as that format's header is passed", async () => {
    let pulled = 0;
    async function* zeros(): AsyncGenerator<Uint8Array> {
      while (pulled < 1000) {
        pulled++;
        yield Buffer.alloc(4096);
      }
    }
    const s = inspectStream(zeros(), "qcow2", DEFAULT_FORMAT_POLICY);
    const err = await (async () => {
      for await (const _ of s.pieces);
    })().catch((e: unknown) => e);
    expect((err as FormatRejectedError).violations.map((v) => v.rule)).toEqual(["format-mismatch"]);
    expect(pulled).toBe(1);
  });
});
