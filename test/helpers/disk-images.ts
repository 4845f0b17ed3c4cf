/**
 * Real disk images for the format tests, made by the tools that make them in production:
 * qemu-img for the virtual disk formats, xorriso and genisoimage for ISOs, sfdisk for
 * partition tables.
 * Hostile variants are these files with a few header bytes changed (tamper()).
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import type { Tool } from "./tools.js";

/** A scratch directory for a test file's images: made before its tests (and any later beforeAll), removed after. */
export function useScratchDir(prefix: string, set: (dir: string) => void): void {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
    set(dir);
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
}

const MiB = 1024 * 1024;

/**
 * Runs one of the tools. Each test case declares the tools its images need (requireTools in
 * ./tools.ts: qemu-img for qemu*, makeLuks and makeBackedQcow2, xorriso for makeIso,
 * genisoimage for makeUdfIso, sfdisk for makePartitioned; makeRawData, tamper and withAppended
 * need none), so a missing one skips only those cases; one not declared fails here, by name.
 */
function run(cmd: Tool | "truncate", args: string[], cwd: string, input?: string): void {
  try {
    execFileSync(cmd, args, {
      cwd,
      input,
      stdio: [input === undefined ? "ignore" : "pipe", "ignore", "pipe"],
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    throw new Error(`${cmd} is not installed, and the test did not declare that it needs it (requireTools)`);
  }
}

/** `qemu-img create -f fmt [-o opts] name size`; returns the path. */
export function qemuCreate(
  dir: string,
  name: string,
  fmt: string,
  size: number,
  opts: string[] = [],
): string {
  const args = ["create", "-q", "-f", fmt, ...opts, name, String(size)];
  run("qemu-img", args, dir);
  return join(dir, name);
}

/**
 * A LUKS v1 image from qemu-img. Its PBKDF benchmark fails now and then on a busy machine
 * ("Unable to get accurate CPU usage"), so it is tried a few times.
 */
export function makeLuks(dir: string, name: string, size: number): string {
  const opts = ["--object", "secret,id=s0,data=passphrase", "-o", "key-secret=s0,iter-time=250"];
  for (let attempt = 1; ; attempt++) {
    try {
      return qemuCreate(dir, name, "luks", size, opts);
    } catch (e) {
      if (attempt === 5) throw e;
    }
  }
}

/** A qcow2 whose header names a backing file (a host file with `content`): the classic attack. */
export function makeBackedQcow2(dir: string, name: string, size: number, content = "host secret"): string {
  const backing = join(dir, `${name}.backing`);
  writeFileSync(backing, content);
  return qemuCreate(dir, name, "qcow2", size, ["-b", backing, "-F", "raw"]);
}

/** qemu-img's own view of a file, with its format given (never probed). */
export function qemuVirtualSize(path: string, fmt: string): number {
  const out = execFileSync("qemu-img", ["info", "--output=json", "-f", fmt, path], { encoding: "utf8" });
  return JSON.parse(out)["virtual-size"] as number;
}

/** A raw disk with real content turned into `fmt` by `qemu-img convert` (data, not just a header). */
export function qemuConvert(
  dir: string,
  from: string,
  name: string,
  fmt: string,
  opts: string[] = [],
): string {
  run("qemu-img", ["convert", "-q", "-f", "raw", "-O", fmt, ...opts, from, name], dir);
  return join(dir, name);
}

/** A small ISO 9660 image; with `gpt`, an EFI partition appended and a GPT in the system area. */
export function makeIso(dir: string, name: string, gpt = false): string {
  const tree = join(dir, `${name}.d`);
  mkdirSync(tree, { recursive: true });
  writeFileSync(join(tree, "readme.txt"), "tessera test volume\n");
  const args = ["-as", "mkisofs", "-quiet", "-V", "TESSERA", "-o", name];
  if (gpt) {
    const efi = join(dir, `${name}.efi`);
    writeFileSync(efi, Buffer.alloc(1440 * 1024));
    args.push("-append_partition", "2", "0xef", efi, "-appended_part_as_gpt");
  }
  run("xorriso", [...args, tree], dir);
  return join(dir, name);
}

/** An ISO 9660 image with a UDF bridge, by genisoimage (oslo's "udf" subformat). */
export function makeUdfIso(dir: string, name: string): string {
  const tree = join(dir, `${name}.d`);
  mkdirSync(tree, { recursive: true });
  writeFileSync(join(tree, "readme.txt"), "tessera test volume\n");
  run("genisoimage", ["-quiet", "-udf", "-V", "TESSERA", "-o", name, tree], dir);
  return join(dir, name);
}

/** A raw disk partitioned by sfdisk with a `label` (gpt or dos) table and one partition. */
export function makePartitioned(dir: string, name: string, label: "gpt" | "dos", size = 8 * MiB): string {
  const path = join(dir, name);
  writeFileSync(path, Buffer.alloc(0));
  run("truncate", ["-s", String(size), path], dir);
  run("sfdisk", ["-q", path], dir, `label: ${label}\n,,L\n`);
  return path;
}

/** Random bytes (deterministic per seed) as a raw disk of `size` bytes. */
export function makeRawData(dir: string, name: string, size: number, seed = 1): string {
  const b = Buffer.alloc(Math.ceil(size / 4) * 4);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  const path = join(dir, name);
  writeFileSync(path, b.subarray(0, size));
  return path;
}

/** Copies `src` to `name` and overwrites bytes at the given offsets (negative: from the end). */
export function tamper(src: string, dir: string, name: string, edits: [number, Uint8Array][]): string {
  const b = Buffer.from(readFileSync(src));
  for (const [at, bytes] of edits) b.set(bytes, at < 0 ? b.length + at : at);
  const path = join(dir, name);
  writeFileSync(path, b);
  return path;
}

/** Appends bytes to a copy of `src`. */
export function withAppended(src: string, dir: string, name: string, extra: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, readFileSync(src));
  const fd = openSync(path, "a");
  writeSync(fd, extra);
  closeSync(fd);
  return path;
}

export function u32be(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}
export function u32le(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}
export function u64le(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
}
export function u64be(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  return b;
}
