import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { prng } from "../helpers/data.js";
import { client } from "../helpers/server.js";
import { waitFor } from "../helpers/wait.js";

// The server is tested as shipped: the compiled bin in a child process (npm test builds it).
const BIN = new URL("../../dist/src/cli/main.js", import.meta.url).pathname;

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** Starts `tessera serve` on an ephemeral port; resolves with its URL and its log lines. */
async function serve(dataDir: string, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, "serve", "--data", dataDir, "--port", "0"], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  const logs: Record<string, unknown>[] = [];
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on("line", (line) => {
      const rec = JSON.parse(line) as Record<string, unknown>;
      logs.push(rec);
      if (rec.msg === "tessera listening") resolve(rec.url as string);
    });
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, url, logs, exited };
}

async function tempDir() {
  const d = await mkdtemp(join(tmpdir(), "tessera-proc-"));
  dirs.push(d);
  return d;
}

const sha = (b: Uint8Array) => createHash("sha512").update(b).digest("hex");

/** Sends `sent` of a `declared`-byte upload and leaves the request open; resolves once saving. */
async function hangingUpload(base: string, id: string, declared: number, sent: Uint8Array) {
  const api = client(() => base);
  const req = request(new URL(api.url(`/v2/images/${id}/file`)), {
    method: "PUT",
    headers: { "content-type": "application/octet-stream", "content-length": declared },
  });
  const answered = new Promise<number>((resolve) => {
    req.on("response", (r) => resolve(r.statusCode ?? 0));
    req.on("error", () => resolve(-1));
  });
  req.write(sent);
  await waitFor(`image ${id} to be saving`, async () => {
    const s = ((await (await api.get(`/v2/images/${id}`)).json()) as { status: string }).status;
    return s === "saving";
  });
  return { req, answered };
}

describe("tessera serve as a process", () => {
  it("keeps serving when nobody reads its log output", async () => {
    const dir = await tempDir();
    // An ephemeral port, read from the first log line (a port found free beforehand could be
    // taken by another process before the server binds it).
    const child = spawn(process.execPath, [BIN, "serve", "--data", dir, "--port", "0"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(child);
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const url = await new Promise<string>((resolve, reject) => {
      lines.on("line", (line) => {
        const rec = JSON.parse(line) as Record<string, unknown>;
        if (rec.msg === "tessera listening") resolve(rec.url as string);
      });
      child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
    });
    // Then never read again: the pipe fills after a few hundred log lines.
    lines.close();
    child.stdout?.pause();
    for (let i = 0; i < 1500; i++) {
      const res = await fetch(`${url}/v2/images?limit=1&padding=${"x".repeat(200)}`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  });

  it("restarts cleanly after SIGKILL mid-upload: that image is queued, every other one intact", async () => {
    const dir = await tempDir();
    const s1 = await serve(dir);
    const api1 = client(() => s1.url);
    const kept: { id: string; data: Uint8Array }[] = [];
    for (let i = 0; i < 3; i++) {
      const data = prng(100 + i, 2 * 1024 * 1024 + i * 4099);
      const img = await api1.createImage({ name: `keep-${i}`, disk_format: "raw", container_format: "bare" });
      expect((await api1.upload(img.id, data)).status).toBe(204);
      kept.push({ id: img.id, data });
    }
    const victim = await api1.createImage({ name: "victim", disk_format: "raw", container_format: "bare" });
    // Half of it shares bytes with a kept image, so the crash lands among deduplicated chunks too.
    await hangingUpload(s1.url, victim.id, 8 * 1024 * 1024, kept[0].data);
    s1.child.kill("SIGKILL");
    await s1.exited;

    const s2 = await serve(dir);
    const api2 = client(() => s2.url);
    const v = (await (await api2.get(`/v2/images/${victim.id}`)).json()) as Record<string, unknown>;
    expect(v).toMatchObject({ status: "queued", size: null, checksum: null });
    expect((await api2.get(`/v2/images/${victim.id}/file`)).status).toBe(204);
    for (const k of kept) {
      const res = await api2.get(`/v2/images/${k.id}/file`);
      expect(res.status).toBe(200);
      expect(sha(new Uint8Array(await res.arrayBuffer()))).toBe(sha(k.data));
    }
    // The interrupted image takes a new upload.
    const again = prng(200, 1024 * 1024);
    expect((await api2.upload(victim.id, again)).status).toBe(204);
    expect(sha(new Uint8Array(await (await api2.get(`/v2/images/${victim.id}/file`)).arrayBuffer()))).toBe(
      sha(again),
    );
  });

  it("shuts down on SIGTERM: aborts uploads (image back to queued), finishes downloads, exits 0, logs each request", async () => {
    const dir = await tempDir();
    const s1 = await serve(dir, { TESSERA_SHUTDOWN_GRACE_SECONDS: "20" });
    const api = client(() => s1.url);
    const data = prng(300, 24 * 1024 * 1024);
    const img = await api.createImage({ name: "dl", disk_format: "raw", container_format: "bare" });
    expect((await api.upload(img.id, data)).status).toBe(204);
    const up = await api.createImage({ name: "up", disk_format: "raw", container_format: "bare" });
    const upload = await hangingUpload(s1.url, up.id, 4 * 1024 * 1024, prng(301, 1024));

    // A download that reads slowly, so it is still running when the signal arrives.
    let started: () => void = () => {};
    const downloading = new Promise<void>((r) => {
      started = r;
    });
    const received = new Promise<Buffer>((resolve, reject) => {
      request(new URL(api.url(`/v2/images/${img.id}/file`)), (res) => {
        started();
        const parts: Buffer[] = [];
        res.pause();
        const pump = setInterval(() => {
          const p = res.read(64 * 1024) ?? res.read();
          if (p) parts.push(p);
        }, 5);
        res.on("end", () => {
          clearInterval(pump);
          resolve(Buffer.concat(parts));
        });
        res.on("error", reject);
        res.on("readable", () => {});
      })
        .on("error", reject)
        .end();
    });
    // Its answer has begun: the server is sending it (a fixed wait could end before the
    // request had even arrived).
    await downloading;
    s1.child.kill("SIGTERM");
    const body = await received;
    expect(sha(body)).toBe(sha(data));
    expect(await upload.answered).not.toBe(204);
    expect(await s1.exited).toBe(0);

    // The signal did land while both were in flight.
    expect(s1.logs.find((l) => l.msg === "shutting down")).toMatchObject({ uploads: 1, downloads: 1 });
    const requests = s1.logs.filter((l) => typeof l.req_id === "string" && typeof l.status === "number");
    expect(requests.length).toBeGreaterThanOrEqual(5);
    for (const r of requests) expect(r).toHaveProperty("ms");
    const dl = requests.find((r) => r.method === "GET" && String(r.path).endsWith("/file"));
    expect(dl).toMatchObject({ status: 200, bytes_out: data.length, complete: true });

    const s2 = await serve(dir);
    const api2 = client(() => s2.url);
    expect(((await (await api2.get(`/v2/images/${up.id}`)).json()) as { status: string }).status).toBe(
      "queued",
    );
  });
});
