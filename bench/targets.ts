/**
 * What the HTTP benchmarks drive: a Tessera server (`tessera serve`, the compiled bin) or the
 * real Glance (.ci/glance-peer.sh), images created, uploaded and downloaded with curl.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { freePort, log } from "./common.js";

const run = promisify(execFile);
const MB = 1e6;
const BIN = new URL("../src/cli/main.js", import.meta.url).pathname;

export interface Target {
  name: string;
  url: string;
}

/** The disk_format a file declares, from its extension (format inspection holds uploads to it). */
export function diskFormat(file: string): string {
  const ext = file.split(".").pop() ?? "";
  return ["qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso"].includes(ext) ? ext : "raw";
}

export async function createImage(t: Target, name: string, disk_format = "raw"): Promise<string> {
  const res = await fetch(`${t.url}/v2/images`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, disk_format, container_format: "bare" }),
  });
  if (res.status !== 201) throw new Error(`${t.name}: create ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

export async function curl(args: string[]): Promise<{ code: string; seconds: number }> {
  const { stdout } = await run(
    "curl",
    ["-s", "-S", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", ...args],
    {
      maxBuffer: 1 << 20,
    },
  );
  const [code, seconds] = stdout.trim().split(" ");
  return { code, seconds: Number(seconds) };
}

/** Uploads `file` as a new image; MB/s. */
export async function upload(t: Target, file: string, size: number): Promise<{ id: string; mbps: number }> {
  const id = await createImage(t, "bench", diskFormat(file));
  const r = await curl([
    "-X",
    "PUT",
    "-H",
    "Content-Type: application/octet-stream",
    "-H",
    "Expect:",
    "-T",
    file,
    `${t.url}/v2/images/${id}/file`,
  ]);
  if (r.code !== "204") throw new Error(`${t.name}: upload answered ${r.code}`);
  return { id, mbps: size / MB / r.seconds };
}

/** Downloads image `id` of `size` bytes whole; MB/s. */
export async function download(t: Target, id: string, size: number): Promise<number> {
  const r = await curl([`${t.url}/v2/images/${id}/file`]);
  if (r.code !== "200") throw new Error(`${t.name}: download answered ${r.code}`);
  return size / MB / r.seconds;
}

export async function removeImage(t: Target, id: string): Promise<void> {
  await fetch(`${t.url}/v2/images/${id}`, { method: "DELETE" });
}

/** `tessera serve` on `dataDir` and a free port, with `env` and extra flags. */
export async function startTessera(
  dataDir: string,
  o: { env?: Record<string, string>; args?: string[]; nodeArgs?: string[] } = {},
): Promise<{ child: ChildProcess; url: string }> {
  const args = [...(o.nodeArgs ?? []), BIN, "serve", "--data", dataDir, "--port", "0", ...(o.args ?? [])];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, TESSERA_LOG_LEVEL: "info", ...o.env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((ok, fail) => {
    lines.on("line", (l) => {
      const rec = JSON.parse(l) as { msg?: string; url?: string };
      if (rec.msg === "tessera listening") ok(rec.url as string);
    });
    child.once("exit", (c) => fail(new Error(`tessera exited ${c}`)));
  });
  return { child, url };
}

/** The real Glance started by `script` (glance-peer.sh) in `dir`; undefined when the script is missing. */
export async function startGlance(
  dir: string,
  script: string,
  workers = 1,
): Promise<{ url: string; stop: () => Promise<void> } | undefined> {
  const path = resolve(script);
  if (!existsSync(path)) {
    log(`glance: ${path} not found; Glance not measured`);
    return undefined;
  }
  const { stdout } = await run(path, [String(await freePort()), dir], {
    env: { ...process.env, GLANCE_PEER_WORKERS: String(workers) },
  });
  const url = stdout.trim().split("\n").pop() as string;
  return {
    url,
    stop: async () => {
      await run(join(path, "..", "glance-peer-stop.sh"), [dir]).catch(() => {});
    },
  };
}

/** The peak resident set of a live process (VmHWM), MB. */
export async function peakRssMB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);
  return Math.round(kb / 1024);
}
