/**
 * Fuzzing: real images of every format, with their headers mutated (bit flips, truncations,
 * huge offsets and counts), fed in pieces of random sizes. Whatever arrives, the detector
 * never throws, holds a bounded number of bytes, takes a bounded number of steps per piece,
 * and decides the same way however the stream is cut.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { FormatDetector } from "../../src/formats/detect.js";
import { DEFAULT_FORMAT_POLICY, judge } from "../../src/formats/rules.js";
import { makeIso, makeLuks, makePartitioned, qemuCreate, useScratchDir } from "../helpers/disk-images.js";
import { requireTools, type Tool, toolsPresent } from "../helpers/tools.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const SAMPLES_PER_SEED = 150;
let dir = "";
const seeds: { name: string; bytes: Buffer }[] = [];

useScratchDir("tessera-fuzz-", (d) => {
  dir = d;
});
beforeAll(async () => {
  const bare = () => {
    const path = join(dir, "bare.vmdk");
    writeFileSync(
      path,
      '# Disk DescriptorFile\nversion=1\ncreateType="monolithicSparse"\nRW 2048 SPARSE "x.vmdk"\n',
    );
    return path;
  };
  // Each seed with the programs that make it: a missing one drops only its seeds (off CI).
  const makers: [Tool[], () => string][] = [
    [["qemu-img"], () => qemuCreate(dir, "a.qcow2", "qcow2", 64 * MiB)],
    [["qemu-img"], () => qemuCreate(dir, "b.qcow2", "qcow2", 64 * MiB, ["-o", "compat=0.10"])],
    [["qemu-img"], () => qemuCreate(dir, "a.vmdk", "vmdk", 64 * MiB)],
    [["qemu-img"], () => qemuCreate(dir, "b.vmdk", "vmdk", 64 * MiB, ["-o", "subformat=streamOptimized"])],
    [["qemu-img"], () => qemuCreate(dir, "a.vhd", "vpc", 64 * MiB)],
    [["qemu-img"], () => qemuCreate(dir, "b.vhd", "vpc", 2 * MiB, ["-o", "subformat=fixed"])],
    [["qemu-img"], () => qemuCreate(dir, "a.vhdx", "vhdx", 64 * MiB)],
    [["qemu-img"], () => qemuCreate(dir, "a.vdi", "vdi", 64 * MiB)],
    [["qemu-img"], () => qemuCreate(dir, "a.qed", "qed", 64 * MiB)],
    [["qemu-img"], () => makeLuks(dir, "a.luks", MiB)],
    [["xorriso"], () => makeIso(dir, "a.iso")],
    [["sfdisk"], () => makePartitioned(dir, "a.gpt", "gpt", 2 * MiB)],
    [[], bare],
  ];
  for (const [tools, make] of makers) {
    if (!toolsPresent(tools, "the fuzz seeds made with them")) continue;
    const f = make();
    const b = readFileSync(f);
    // Head and tail: where every structure an inspector reads lives (VHDX's metadata at 2 MiB
    // included); the middle of big files is data.
    const bytes =
      b.length <= 3 * MiB ? b : Buffer.concat([b.subarray(0, 3 * MiB), b.subarray(b.length - 4 * KiB)]);
    seeds.push({ name: f.split("/").pop() as string, bytes });
  }
});

/** xorshift32: reproducible randomness, so a failure names the seed that makes it. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  return { next, int: (n: number) => Math.floor(next() * n) };
}

const HUGE = [0xffffffffn, 0xffffffffffffffffn, 1n << 63n, 1n << 31n, 0x7fffffffn, 0n, 1n];
/** Offsets where the formats keep sizes, offsets and counts. */
const HOT = [
  0,
  4,
  8,
  12,
  16,
  20,
  24,
  28,
  32,
  36,
  40,
  44,
  48,
  56,
  60,
  72,
  100,
  104,
  0x170,
  510,
  192 * KiB + 8,
];

function mutate(src: Buffer, r: ReturnType<typeof rng>): Buffer {
  const b = Buffer.from(src);
  const kind = r.int(4);
  if (kind === 0) {
    // Bit flips, mostly in the first sectors.
    for (let i = 0, n = 1 + r.int(16); i < n; i++) {
      const at = r.next() < 0.8 ? r.int(Math.min(b.length, 4 * KiB)) : r.int(b.length);
      b[at] = (b[at] as number) ^ (1 << r.int(8));
    }
    return b;
  }
  if (kind === 1) return b.subarray(0, r.int(Math.min(b.length, 256 * KiB)));
  // Huge or zero values in size, offset and count fields, both byte orders.
  for (let i = 0, n = 1 + r.int(4); i < n; i++) {
    const at = (kind === 2 ? (HOT[r.int(HOT.length)] as number) : r.int(Math.min(b.length, 256 * KiB))) & ~3;
    const v = HUGE[r.int(HUGE.length)] as bigint;
    if (at + 8 > b.length) continue;
    if (r.next() < 0.5) b.writeBigUInt64LE(v, at);
    else b.writeBigUInt64BE(v, at);
  }
  return b;
}

function detect(bytes: Buffer, cut: (left: number) => number) {
  const d = new FormatDetector({ createTypes: DEFAULT_FORMAT_POLICY.vmdkCreateTypes });
  let pieces = 0;
  let peak = 0;
  for (let at = 0; at < bytes.length; ) {
    const n = Math.max(1, Math.min(bytes.length - at, cut(bytes.length - at)));
    d.feed(bytes.subarray(at, at + n));
    at += n;
    pieces++;
    peak = Math.max(peak, d.footprint());
  }
  const detection = d.finish();
  return { detection, pieces, peak, steps: d.steps() };
}

describe("fuzzed headers", () => {
  it("never throw, stay within 1.5 MiB and a bounded number of steps, and decide the same however the stream is cut", (ctx) => {
    // Most seeds are qemu-img's; without it too little would be left to fuzz.
    requireTools(ctx, ["qemu-img"]);
    let samples = 0;
    const outcomes = new Map<string, number>();
    for (const [s, seed] of seeds.entries()) {
      const r = rng(0x7e55e7a + s);
      for (let i = 0; i < SAMPLES_PER_SEED; i++) {
        const bytes = mutate(seed.bytes, r);
        const whole = detect(bytes, () => 1 << 20);
        const random = detect(bytes, () => 1 + r.int(r.next() < 0.5 ? 600 : 70_000));
        for (const run of [whole, random]) {
          expect(run.peak, `${seed.name} sample ${i}`).toBeLessThan(1.5 * MiB);
          // Each piece: at most one step per inspector and per region it may add (VHDX: 4).
          expect(run.steps, `${seed.name} sample ${i}`).toBeLessThanOrEqual(run.pieces * 9 * 5);
        }
        expect(JSON.stringify(random.detection), `${seed.name} sample ${i}`).toBe(
          JSON.stringify(whole.detection),
        );
        const verdict = judge(whole.detection, "raw", DEFAULT_FORMAT_POLICY);
        const key = verdict.length === 0 ? "accepted" : (verdict[0]?.rule as string);
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        samples++;
      }
    }
    console.log(`fuzz: ${samples} samples; first rule broken:`, Object.fromEntries(outcomes));
    expect(samples).toBe(seeds.length * SAMPLES_PER_SEED);
    // The mutations reach the parsers: malformed headers are found, not just signature misses.
    expect(outcomes.get("malformed-header") ?? 0).toBeGreaterThan(0);
  }, 300_000);
});
