import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { prng } from "../helpers/data.js";

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

function tessera(args: string[], input?: Buffer, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    input,
    maxBuffer: 1 << 30,
    env: { ...process.env, ...env },
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
      expect([...engine.catalog.objects.getKeys()].length).toBe(1);
      expect([...engine.store().index.packs.getKeys()].length).toBe(before);
      let refs = 0;
      for (const { value } of engine.store().index.chunks.getRange()) refs += value.readUInt32LE(28);
      expect(refs).toBe([...engine.store().index.chunks.getKeys()].length);
    } finally {
      await engine.close();
    }
  });
});
