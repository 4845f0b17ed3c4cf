import { spawn, spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { chunksOf, packsOf } from "../helpers/catalog.js";
import { prng } from "../helpers/data.js";
import { makeRawData, qemuCreate } from "../helpers/disk-images.js";

// The CLI is tested as shipped: the compiled bin (npm test builds it first).
const BIN = new URL("../../dist/src/cli/main.js", import.meta.url).pathname;

let dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  dirs = [];
});
async function tempDir() {
  const d = await mkdtemp(join(tmpdir(), "tessera-cli-"));
  dirs.push(d);
  return d;
}

/** Runs the CLI; an `env` entry set to undefined removes that variable. */
function tessera(args: string[], input?: Buffer, env: Record<string, string | undefined> = {}, cwd?: string) {
  const merged = Object.entries({ ...process.env, ...env }).filter(([, v]) => v !== undefined);
  const r = spawnSync(process.execPath, [BIN, ...args], {
    input,
    cwd,
    maxBuffer: 1 << 30,
    env: Object.fromEntries(merged),
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

describe("tessera CLI", () => {
  it("ingests a file and cats it back byte for byte, whole and as a range, with progress on stderr", async () => {
    const dir = await tempDir();
    const data = Buffer.from(prng(50, 3 * 1024 * 1024 + 11));
    await writeFile(join(dir, "img"), data);
    const ing = tessera(["ingest", join(dir, "img"), "--data", join(dir, "data")]);
    expect(ing.status, ing.stderr).toBe(0);
    // Not a terminal: progress as plain lines on standard error, the result alone on stdout.
    expect(ing.stderr).toContain("ingest: 100% (3.1 MB of 3.1 MB)");
    const result = JSON.parse(ing.stdout.toString());
    expect(result).toMatchObject({ size: data.length, bytesStored: data.length, createdObject: true });
    const cat = tessera(["cat", result.manifestId, "--data", join(dir, "data")]);
    expect(cat.status).toBe(0);
    expect(cat.stdout.equals(data)).toBe(true);
    const part = tessera([
      "cat",
      result.manifestId,
      "--data",
      join(dir, "data"),
      "--start",
      "5",
      "--end",
      "70000",
    ]);
    expect(part.stdout.equals(data.subarray(5, 70000))).toBe(true);
    const fromStdin = tessera(["ingest", "-", "--data", join(dir, "data")], data);
    expect(JSON.parse(fromStdin.stdout.toString())).toMatchObject({
      manifestId: result.manifestId,
      bytesStored: 0,
    });
  });

  it("cuts a new data directory at the configured chunkSize, and refuses another size for it later", async () => {
    const dir = await tempDir();
    const data = Buffer.from(prng(51, 2 * 1024 * 1024));
    await writeFile(join(dir, "img"), data);
    const small = tessera(["ingest", join(dir, "img"), "--data", join(dir, "data")], undefined, {
      TESSERA_CHUNK_SIZE: "16384",
    });
    expect(small.status, small.stderr).toBe(0);
    const chunks = JSON.parse(small.stdout.toString()).chunkCount as number;
    expect(chunks).toBeGreaterThan(64); // 2 MiB in ~16 KiB chunks, not ~32 of 64 KiB
    // Without the setting: the directory's own size.
    expect(tessera(["ingest", join(dir, "img"), "--data", join(dir, "data")]).status).toBe(0);
    const other = tessera(["ingest", join(dir, "img"), "--data", join(dir, "data")], undefined, {
      TESSERA_CHUNK_SIZE: "65536",
    });
    expect(other.status).toBe(1);
    expect(other.stderr).toContain("store_format");
    expect(tessera(["stat", "x", "--data", dir], undefined, { TESSERA_CHUNK_SIZE: "5000" }).status).toBe(2);
  });

  it("answers an unknown object with a JSON error and exit status 1, bad usage with 2", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "img"), "some bytes");
    expect(tessera(["ingest", join(dir, "img"), "--data", dir]).status).toBe(0);
    const r = tessera(["cat", "ab".repeat(32), "--data", dir]);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stderr)).toMatchObject({ error: "not_found" });
    expect(tessera(["frobnicate", "--data", dir]).status).toBe(2);
    expect(tessera(["cat", "--data", dir]).status).toBe(2);
  });

  it("leaves the catalog unchanged when the process is killed mid-ingest", async () => {
    const dir = await tempDir();
    const dataDir = join(dir, "data");
    const base = Buffer.from(prng(51, 2 * 1024 * 1024));
    await writeFile(join(dir, "base"), base);
    expect(tessera(["ingest", join(dir, "base"), "--data", dataDir]).status).toBe(0);
    // A slow stream from stdin, so that packs reach the disk while the ingest is still open.
    const child = spawn(process.execPath, [BIN, "ingest", "-", "--data", dataDir], {
      stdio: ["pipe", "ignore", "pipe"],
    });
    child.stdin.on("error", () => {}); // EPIPE once it is killed
    const packsDir = join(dataDir, "objects", "packs");
    const countPacks = async () => {
      let n = 0;
      for (const sub of await readdir(packsDir)) n += (await readdir(join(packsDir, sub))).length;
      return n;
    };
    const before = await countPacks();
    let seed = 100;
    while ((await countPacks()) <= before) {
      child.stdin.write(Buffer.from(prng(seed++, 1024 * 1024)));
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill("SIGKILL");
    await new Promise((r) => child.on("exit", r));
    const engine = await Engine.openDir(dataDir);
    try {
      let objects = 0;
      for await (const _ of engine.catalog.scanObjects()) objects++;
      expect(objects).toBe(1);
      expect((await packsOf(engine)).length).toBe(before);
      const chunks = await chunksOf(engine);
      let refs = 0;
      for (const { rec } of chunks) refs += rec.refs;
      expect(refs).toBe(chunks.length);
    } finally {
      await engine.close();
    }
  });

  it("inspects a qcow2 without --disk-format as qcow2: no violation", async () => {
    const dir = await tempDir();
    const qcow2 = qemuCreate(dir, "disk.qcow2", "qcow2", 8 * 1024 * 1024);
    const r = tessera(["inspect", qcow2]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.toString())).toMatchObject({
      format: "qcow2",
      virtualSize: 8 * 1024 * 1024,
      violations: [],
    });
  });

  it("inspects a raw file without --disk-format as raw, and holds a qcow2 to a declared --disk-format raw", async () => {
    const dir = await tempDir();
    const raw = makeRawData(dir, "disk.raw", 64 * 1024);
    const r = tessera(["inspect", raw]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.toString())).toMatchObject({
      format: "raw",
      virtualSize: 64 * 1024,
      violations: [],
    });
    const qcow2 = qemuCreate(dir, "disk.qcow2", "qcow2", 1024 * 1024);
    const declared = tessera(["inspect", qcow2, "--disk-format", "raw"]);
    expect(declared.status).toBe(1);
    expect(JSON.parse(declared.stdout.toString())).toMatchObject({
      format: "qcow2",
      violations: [{ rule: "raw-over-formatted" }],
    });
  });

  it("refuses every store-reading command where there is no data directory, and creates nothing", async () => {
    const cwd = await tempDir();
    const id = "ab".repeat(32);
    const env = { TESSERA_DATA: undefined, TESSERA_CONFIG: undefined };
    const commands = [
      ["stats"],
      ["stats", "--json"],
      ["cat", id],
      ["stat", id],
      ["fsck"],
      ["fsck", "--repair"],
      ["gc", "--grace", "0"],
      ["rebuild-index"],
      ["copy-image", "00000000-0000-0000-0000-000000000000", "--to", "local"],
      ["convert", "00000000-0000-0000-0000-000000000000", "--to", "qcow2"],
    ];
    for (const args of commands) {
      const r = tessera(args, undefined, env, cwd);
      expect(r.status, args.join(" ")).toBe(1);
      expect(JSON.parse(r.stderr).message, args.join(" ")).toMatch(
        new RegExp(
          `^no Tessera data directory at ${join(cwd, "data")} \\(no catalog.*\\): pass --data or --config$`,
        ),
      );
      expect(await readdir(cwd), args.join(" ")).toEqual([]);
    }
    // An existing but empty directory given with --data is no store either, and stays empty.
    const empty = join(cwd, "empty");
    await mkdir(empty);
    const r = tessera(["stats", "--data", empty], undefined, env, cwd);
    expect(r.stderr).toContain(`no Tessera data directory at ${empty} (no catalog)`);
    expect(await readdir(empty)).toEqual([]);
  });

  it("still rebuilds a lost catalog from the store's packs (the store's format record stands in)", async () => {
    const dir = await tempDir();
    const data = Buffer.from(prng(52, 1024 * 1024));
    await writeFile(join(dir, "img"), data);
    const ing = tessera(["ingest", join(dir, "img"), "--data", join(dir, "data")]);
    expect(ing.status, ing.stderr).toBe(0);
    const { manifestId } = JSON.parse(ing.stdout.toString());
    await rm(join(dir, "data", "catalog"), { recursive: true });
    const rebuilt = tessera(["rebuild-index", "--data", join(dir, "data")]);
    expect(rebuilt.status, rebuilt.stderr).toBe(0);
    expect(JSON.parse(rebuilt.stdout.toString())).toMatchObject({ manifestsRestored: 1 });
    expect((await stat(join(dir, "data", "catalog"))).isDirectory()).toBe(true);
    expect(tessera(["cat", manifestId, "--data", join(dir, "data")]).stdout.equals(data)).toBe(true);
  });
});
