/**
 * Each format, made by the real tool, is recognised with the virtual size qemu-img reports,
 * whatever the sizes of the pieces the stream arrives in, holding a bounded number of bytes.
 */

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { FormatDetector } from "../../src/formats/detect.js";
import { DEFAULT_FORMAT_POLICY, judge } from "../../src/formats/rules.js";
import {
  makeIso,
  makeLuks,
  makePartitioned,
  makeRawData,
  makeUdfIso,
  qemuConvert,
  qemuCreate,
  qemuVirtualSize,
  useScratchDir,
} from "../helpers/disk-images.js";
import { requireTools, type Tool } from "../helpers/tools.js";

const MiB = 1024 * 1024;
let dir = "";

useScratchDir("tessera-formats-", (d) => {
  dir = d;
});

/** Feeds a file to a detector in pieces of `piece` bytes. */
function detectFile(path: string, piece: number) {
  const bytes = readFileSync(path);
  const d = new FormatDetector({ createTypes: DEFAULT_FORMAT_POLICY.vmdkCreateTypes });
  for (let at = 0; at < bytes.length; at += piece) d.feed(bytes.subarray(at, at + piece));
  const footprint = d.footprint();
  return { detection: d.finish(), footprint };
}

const PIECES = [17, 512, 65536, 4 * MiB];

interface Case {
  name: string;
  declared: string;
  qemuFormat: string;
  /** What make() runs; qemu-img also gives the expected virtual size of all but ISOs. */
  tools: Tool[];
  make: () => string;
}

const cases: Case[] = [
  {
    name: "qcow2 v2",
    declared: "qcow2",
    qemuFormat: "qcow2",
    tools: ["qemu-img"],
    make: () => qemuCreate(dir, "v2.qcow2", "qcow2", 13 * MiB + 512, ["-o", "compat=0.10"]),
  },
  {
    name: "qcow2 v3",
    declared: "qcow2",
    qemuFormat: "qcow2",
    tools: ["qemu-img"],
    make: () => qemuCreate(dir, "v3.qcow2", "qcow2", 512 * MiB),
  },
  {
    name: "qcow2 v3 with zstd compression",
    declared: "qcow2",
    qemuFormat: "qcow2",
    tools: ["qemu-img"],
    make: () => qemuCreate(dir, "z.qcow2", "qcow2", 7 * MiB, ["-o", "compression_type=zstd"]),
  },
  {
    name: "qcow2 v3 converted from data",
    declared: "qcow2",
    qemuFormat: "qcow2",
    tools: ["qemu-img"],
    make: () => qemuConvert(dir, makeRawData(dir, "d1.raw", 3 * MiB), "d.qcow2", "qcow2"),
  },
  {
    name: "vmdk monolithicSparse",
    declared: "vmdk",
    qemuFormat: "vmdk",
    tools: ["qemu-img"],
    make: () => qemuCreate(dir, "ms.vmdk", "vmdk", 2057 * MiB),
  },
  {
    name: "vmdk streamOptimized with data",
    declared: "vmdk",
    qemuFormat: "vmdk",
    tools: ["qemu-img"],
    make: () =>
      qemuConvert(dir, makeRawData(dir, "d2.raw", 3 * MiB, 2), "so.vmdk", "vmdk", [
        "-o",
        "subformat=streamOptimized",
      ]),
  },
  {
    name: "vhd dynamic",
    declared: "vhd",
    qemuFormat: "vpc",
    tools: ["qemu-img"],
    make: () => qemuCreate(dir, "dyn.vhd", "vpc", 513 * MiB),
  },
  {
    name: "vhd fixed (footer at the end only)",
    declared: "vhd",
    qemuFormat: "vpc",
    tools: ["qemu-img"],
    make: () => qemuCreate(dir, "fixed.vhd", "vpc", 7 * MiB, ["-o", "subformat=fixed"]),
  },
  {
    name: "vhdx",
    declared: "vhdx",
    qemuFormat: "vhdx",
    tools: ["qemu-img"],
    make: () => qemuCreate(dir, "a.vhdx", "vhdx", 2057 * MiB),
  },
  {
    name: "vdi",
    declared: "vdi",
    qemuFormat: "vdi",
    tools: ["qemu-img"],
    make: () => qemuCreate(dir, "a.vdi", "vdi", 513 * MiB),
  },
  {
    name: "iso 9660",
    declared: "iso",
    qemuFormat: "raw",
    tools: ["xorriso"],
    make: () => makeIso(dir, "plain.iso"),
  },
  {
    name: "iso 9660 with a UDF bridge (genisoimage)",
    declared: "iso",
    qemuFormat: "raw",
    tools: ["genisoimage"],
    make: () => makeUdfIso(dir, "udf.iso"),
  },
  {
    name: "raw with data",
    declared: "raw",
    qemuFormat: "raw",
    tools: ["qemu-img"],
    make: () => makeRawData(dir, "plain.raw", 2 * MiB + 4096),
  },
  {
    name: "raw disk with a GPT (sfdisk)",
    declared: "raw",
    qemuFormat: "raw",
    tools: ["sfdisk", "qemu-img"],
    make: () => makePartitioned(dir, "gpt.raw", "gpt"),
  },
  {
    name: "raw disk with an MBR (sfdisk)",
    declared: "raw",
    qemuFormat: "raw",
    tools: ["sfdisk", "qemu-img"],
    make: () => makePartitioned(dir, "mbr.raw", "dos"),
  },
];

const detectedAs: Record<string, string> = {
  "raw disk with a GPT (sfdisk)": "gpt",
  "raw disk with an MBR (sfdisk)": "gpt",
};

describe("inspectors on images made by qemu-img, xorriso, genisoimage and sfdisk", () => {
  for (const c of cases) {
    it(`accepts ${c.name} as ${c.declared} with qemu-img's virtual size, at every piece size, in bounded memory`, (ctx) => {
      requireTools(ctx, c.tools);
      const path = c.make();
      // ISO volumes: qemu-img sees a raw file; the volume size is the ISO's own (as Glance).
      const expected = c.declared === "iso" ? undefined : qemuVirtualSize(path, c.qemuFormat);
      for (const piece of PIECES) {
        const { detection, footprint } = detectFile(path, piece);
        expect(detection.format).toBe(detectedAs[c.name] ?? c.declared);
        if (expected !== undefined) expect(detection.virtualSize).toBe(expected);
        expect(judge(detection, c.declared, DEFAULT_FORMAT_POLICY)).toEqual([]);
        expect(footprint).toBeLessThan(1.5 * MiB);
      }
    });
  }

  it("reports an ISO's volume size from its primary volume descriptor", (ctx) => {
    requireTools(ctx, ["xorriso"]);
    const path = makeIso(dir, "size.iso");
    const pvd = readFileSync(path).subarray(32768, 34816);
    const { detection } = detectFile(path, 4096);
    expect(detection.virtualSize).toBe(pvd.readUInt32LE(80) * pvd.readUInt16LE(128));
    expect(detection.virtualSize).toBe(readFileSync(path).length);
  });

  it("accepts a bootable ISO that carries a GPT as an ISO, not a polyglot", (ctx) => {
    requireTools(ctx, ["xorriso"]);
    const path = makeIso(dir, "hybrid.iso", true);
    const { detection } = detectFile(path, 65536);
    expect(detection.format).toBe("iso");
    expect(detection.findings.map((f) => f.format).sort()).toEqual(["gpt", "iso"]);
    expect(judge(detection, "iso", DEFAULT_FORMAT_POLICY)).toEqual([]);
  });

  it("accepts a LUKS v1 image (qemu-img) and reports its payload size", (ctx) => {
    requireTools(ctx, ["qemu-img"]);
    const path = makeLuks(dir, "a.luks", 10 * MiB);
    for (const piece of PIECES) {
      const { detection } = detectFile(path, piece);
      expect(detection.format).toBe("luks");
      expect(detection.virtualSize).toBe(10 * MiB);
    }
  });

  it("finds nothing but raw in text and source code", () => {
    const { detection, footprint } = detectFile(new URL(import.meta.url).pathname, 32);
    expect(detection.format).toBe("raw");
    expect(detection.findings).toEqual([]);
    expect(footprint).toBeLessThan(1.5 * MiB);
  });
});
