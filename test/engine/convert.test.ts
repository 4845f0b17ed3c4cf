/**
 * Conversion with qemu-img (Glance's image_conversion step): a stored image becomes another
 * format through the engine, deduplicated against what is stored, its source held to the
 * rules that keep qemu-img inside the image, under resource limits, and atomically.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { ConversionError } from "../../src/formats/qemu-img.js";
import { DEFAULT_FORMAT_POLICY, FormatRejectedError } from "../../src/formats/rules.js";
import { ImageService } from "../../src/images/images.js";
import { makeBackedQcow2, makeRawData, qemuConvert, useScratchDir } from "../helpers/disk-images.js";
import { requireTools, type Tool } from "../helpers/tools.js";

const MiB = 1024 * 1024;
/** What a conversion runs: qemu-img under prlimit. */
const CONVERT: Tool[] = ["qemu-img", "prlimit"];
const BIN = new URL("../../dist/src/cli/main.js", import.meta.url).pathname;
let dir = "";
let raw = "";
let rawBytes = Buffer.alloc(0);

useScratchDir("tessera-convert-", (d) => {
  dir = d;
});
beforeAll(async () => {
  // A disk with data and holes: 6 MiB of data around 2 MiB of zeroes.
  const data = readFileSync(makeRawData(dir, "data.raw", 6 * MiB));
  rawBytes = Buffer.concat([data.subarray(0, 3 * MiB), Buffer.alloc(2 * MiB), data.subarray(3 * MiB)]);
  raw = join(dir, "disk.raw");
  writeFileSync(raw, rawBytes);
});

async function* file(path: string): AsyncGenerator<Buffer> {
  yield readFileSync(path);
}

async function openService(sub: string, policy = DEFAULT_FORMAT_POLICY) {
  const engine = await Engine.openDir(join(dir, sub), { durable: false });
  const images = await ImageService.open(engine, { formats: policy });
  const add = async (path: string, disk_format: string) => {
    const img = await images.create({ name: path, disk_format, container_format: "bare" });
    return images.upload(img.id, file(path));
  };
  return { engine, images, add };
}

async function readAll(engine: Engine, object: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of engine.read(object)) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

describe("converting stored images with qemu-img", () => {
  it("turns a qcow2 into the raw image already stored: same object, nothing new written, old data released", async (ctx) => {
    requireTools(ctx, CONVERT);
    const { engine, images, add } = await openService("dedup");
    try {
      const plain = await add(raw, "raw");
      const q = await add(qemuConvert(dir, raw, "disk.qcow2", "qcow2"), "qcow2");
      const before = q.object as string;
      const converted = await images.convert(q.id, "raw");
      expect(converted).toMatchObject({
        status: "active",
        disk_format: "raw",
        size: rawBytes.length,
        virtual_size: rawBytes.length,
        checksum: createHash("md5").update(rawBytes).digest("hex"),
        object: plain.object,
      });
      expect(await images.get(q.id)).toEqual(converted);
      await expect(engine.stat(before)).rejects.toThrow(/not found/);
      expect((await readAll(engine, converted.object as string)).equals(rawBytes)).toBe(true);
    } finally {
      await engine.close();
    }
  });

  it("turns raw into a qcow2 that qemu-img finds identical in content, with its virtual size", async (ctx) => {
    requireTools(ctx, CONVERT);
    const { engine, images, add } = await openService("toqcow2");
    try {
      const img = await add(raw, "raw");
      const converted = await images.convert(img.id, "qcow2");
      expect(converted).toMatchObject({ disk_format: "qcow2", virtual_size: rawBytes.length });
      const out = join(dir, "back.qcow2");
      writeFileSync(out, await readAll(engine, converted.object as string));
      const cmp = spawnSync("qemu-img", ["compare", "-f", "raw", "-F", "qcow2", raw, out]);
      expect(cmp.status, cmp.stderr.toString()).toBe(0);
    } finally {
      await engine.close();
    }
  });

  it("refuses a source with a backing file even where uploads were allowed to carry one", async (ctx) => {
    requireTools(ctx, CONVERT);
    const lax = {
      ...DEFAULT_FORMAT_POLICY,
      rules: { ...DEFAULT_FORMAT_POLICY.rules, "qcow2-backing-file": false },
    };
    const { engine, images, add } = await openService("backed", lax);
    try {
      const backed = makeBackedQcow2(dir, "backed.qcow2", 4 * MiB);
      const img = await add(backed, "qcow2");
      const err = await images.convert(img.id, "raw").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FormatRejectedError);
      expect((err as Error).message).toContain("[qcow2-backing-file]");
      expect(await images.get(img.id)).toEqual(img);
    } finally {
      await engine.close();
    }
  });

  it("fails cleanly under a too-small address space limit: the image keeps its data, nothing is committed", async (ctx) => {
    requireTools(ctx, CONVERT);
    const { engine, images, add } = await openService("limits");
    try {
      const img = await add(qemuConvert(dir, raw, "lim.qcow2", "qcow2"), "qcow2");
      const err = await images
        .convert(img.id, "raw", { limits: { cpuSeconds: 60, addressSpaceBytes: 16 * MiB } })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConversionError);
      expect((err as Error).message).toMatch(/qemu-img convert qcow2 → raw failed/);
      expect(await images.get(img.id)).toEqual(img);
    } finally {
      await engine.close();
    }
  });

  it("is reachable as `tessera convert` on a stopped store", async (ctx) => {
    requireTools(ctx, CONVERT);
    const { engine, add } = await openService("cli");
    const img = await add(qemuConvert(dir, raw, "cli.qcow2", "qcow2"), "qcow2");
    await engine.close();
    const r = spawnSync(process.execPath, [
      BIN,
      "convert",
      img.id,
      "--to",
      "raw",
      "--data",
      join(dir, "cli"),
    ]);
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(JSON.parse(r.stdout.toString())).toMatchObject({
      id: img.id,
      disk_format: "raw",
      size: rawBytes.length,
    });
    const bad = spawnSync(process.execPath, [
      BIN,
      "convert",
      img.id,
      "--to",
      "iso",
      "--data",
      join(dir, "cli"),
    ]);
    expect(bad.status).toBe(1);
    expect(JSON.parse(bad.stderr.toString())).toMatchObject({ error: "conversion_failed" });
  });

  it("is reachable as `tessera inspect`: the verdict as JSON, exit status 1 when a rule is broken", (ctx) => {
    requireTools(ctx, ["qemu-img"]);
    const backed = makeBackedQcow2(dir, "inspect-me.qcow2", 4 * MiB);
    const bad = spawnSync(process.execPath, [BIN, "inspect", backed, "--disk-format", "qcow2"]);
    expect(bad.status).toBe(1);
    expect(JSON.parse(bad.stdout.toString())).toMatchObject({
      format: "qcow2",
      virtualSize: 4 * MiB,
      violations: [{ rule: "qcow2-backing-file" }],
    });
    const good = spawnSync(process.execPath, [BIN, "inspect", raw]);
    expect(good.status, good.stderr.toString()).toBe(0);
    expect(JSON.parse(good.stdout.toString())).toMatchObject({
      format: "raw",
      virtualSize: rawBytes.length,
      violations: [],
    });
  });
});
