/**
 * "Installing for production" (docs/operations.md) done as written: the tarball `npm pack`
 * makes, installed with `npm install --omit=dev` into an empty prefix (from the registry or
 * npm's cache), holds the built server and none of the development tools, needs no compiler
 * or script of ours to install, and serves: /healthcheck, and an image uploaded and
 * downloaded byte for byte. Packs this checkout's dist/ (`npm run build` first, as for every
 * test of the CLI); the documented `npm pack` builds it itself (prepare).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prng } from "../helpers/data.js";
import { freePort } from "../helpers/ports.js";
import { runAsync } from "../helpers/run.js";

const ROOT = new URL("../..", import.meta.url).pathname;
const DEV_ONLY = ["typescript", "vitest", "@biomejs/biome", "s3rver", "wabt", "playwright-core", "postgres"];
const MINUTES = 60_000;

let dir: string;
let tarball: string;
let prefix: string;
let install: { status: number; out: string; err: string };
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tessera-install-"));
  const packed = await runAsync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], {
    cwd: ROOT,
  });
  if (packed.status !== 0) throw new Error(`npm pack: ${packed.err}`);
  tarball = join(dir, (JSON.parse(packed.out) as { filename: string }[])[0]?.filename as string);
  prefix = join(dir, "opt-tessera");
  await mkdir(prefix);
  // An empty prefix with nothing of this checkout's in reach, as on a fresh host.
  install = await runAsync(
    "npm",
    ["install", "--omit=dev", "--prefer-offline", "--no-audit", "--no-fund", "--foreground-scripts", tarball],
    { cwd: prefix, env: { ...process.env, NODE_PATH: "" } },
  );
}, 10 * MINUTES);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("a production install from the npm pack tarball", () => {
  it("holds the built server, not the sources, tests or a build step", async () => {
    const listed = await runAsync("tar", ["-tzf", tarball]);
    const files = listed.out.split("\n").filter((f) => f !== "");
    expect(files).toContain("package/dist/src/cli/main.js");
    expect(files).toContain("package/contrib/systemd/tessera.service");
    for (const f of files) expect(f, f).not.toMatch(/^package\/(src|test|bench|dist\/bench|scripts)\//);
    const manifest = await runAsync("tar", ["-xzOf", tarball, "package/package.json"]);
    const scripts = (JSON.parse(manifest.out) as { scripts: Record<string, string> }).scripts;
    // What npm runs when it installs a package from a tarball: none of it may need the compiler.
    // (prepare, the build, runs for a checkout, git and linked directories only: npm's arborist.)
    for (const hook of ["preinstall", "install", "postinstall"]) expect(scripts[hook], hook).toBeUndefined();
  });

  it("installs with --omit=dev: no typescript, vitest or biome in the tree", async () => {
    expect(install.status, install.err).toBe(0);
    const lock = JSON.parse(await readFile(join(prefix, "node_modules/.package-lock.json"), "utf8")) as {
      packages: Record<string, unknown>;
    };
    const installed = Object.keys(lock.packages);
    expect(installed).toContain("node_modules/tessera");
    expect(installed).toContain("node_modules/lmdb");
    for (const name of DEV_ONLY) {
      expect(
        installed.filter((p) => p.endsWith(`node_modules/${name}`)),
        name,
      ).toEqual([]);
      expect(existsSync(join(prefix, "node_modules", name)), name).toBe(false);
    }
  });

  it("serves from the installed tree: /healthcheck, and an upload downloaded byte for byte", async () => {
    expect(install.status, install.err).toBe(0);
    const port = await freePort();
    const bin = join(prefix, "node_modules/.bin/tessera");
    const args = [
      "serve",
      "--port",
      String(port),
      "--data",
      join(dir, "data"),
      "--workers",
      "1",
      "--no-fsync",
    ];
    const child: ChildProcess = spawn(bin, args, {
      cwd: dir,
      env: { ...process.env, NODE_PATH: "" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const exited = new Promise((r) => child.once("exit", (code, signal) => r(code ?? signal)));
    try {
      await new Promise<void>((resolve, reject) => {
        createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
          if ((JSON.parse(line) as { msg?: string }).msg === "tessera listening") resolve();
        });
        child.once("exit", (code) => reject(new Error(`the installed server exited with ${code}`)));
      });
      const url = `http://127.0.0.1:${port}`;
      const health = await fetch(`${url}/healthcheck`);
      expect(health.status).toBe(200);
      expect(await health.text()).toBe("OK");
      const created = await fetch(`${url}/v2/images`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "installed", disk_format: "raw", container_format: "bare" }),
      });
      expect(created.status).toBe(201);
      const { id } = (await created.json()) as { id: string };
      const data = Buffer.from(prng(7, 5 * 1024 * 1024 + 3));
      const put = await fetch(`${url}/v2/images/${id}/file`, {
        method: "PUT",
        headers: { "content-type": "application/octet-stream" },
        body: data,
      });
      expect(put.status).toBe(204);
      const got = Buffer.from(await (await fetch(`${url}/v2/images/${id}/file`)).arrayBuffer());
      const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
      expect(got.length).toBe(data.length);
      expect(sha(got)).toBe(sha(data));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });
});
