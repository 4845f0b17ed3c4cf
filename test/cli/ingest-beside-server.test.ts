/**
 * `tessera ingest` in processes of its own, writing into a data directory while `tessera serve`
 * serves it, uploads and deletes images and collects garbage (its schedule and `tessera gc`,
 * every second, no grace): nothing either side committed is lost, and fsck finds the store
 * clean. The leases in the catalog are what make this safe (docs/format.md, the GC rule).
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, type ChildServer, startChildServer } from "../helpers/child-server.js";
import { prng } from "../helpers/data.js";
import { runAsync } from "../helpers/run.js";

const MiB = 1024 * 1024;
let dir: string;
let server: ChildServer | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tessera-beside-"));
});
afterAll(async () => {
  await server?.kill();
  await rm(dir, { recursive: true, force: true });
});

function tessera(...args: string[]) {
  return runAsync(process.execPath, [
    BIN,
    ...args,
    "--data",
    join(dir, "data"),
    "--config",
    join(dir, "config.json"),
  ]);
}

/** `tessera cat ID`: the object's bytes. */
function cat(id: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "cat", id, "--data", join(dir, "data")], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const parts: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => parts.push(b));
    child.once("exit", (code) =>
      code === 0 ? resolve(Buffer.concat(parts)) : reject(new Error(`cat exited ${code}`)),
    );
  });
}

async function upload(url: string, data: Buffer): Promise<string> {
  const created = await fetch(`${url}/v2/images`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ disk_format: "raw", container_format: "bare" }),
  });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  const put = await fetch(`${url}/v2/images/${id}/file`, {
    method: "PUT",
    headers: { "content-type": "application/octet-stream" },
    body: new Uint8Array(data),
  });
  expect(put.status).toBe(204);
  return id;
}

describe("tessera ingest beside a running server", () => {
  it("loses nothing of either while the server uploads, deletes and collects with no grace; fsck is clean", {
    timeout: 180_000,
  }, async () => {
    await writeFile(
      join(dir, "config.json"),
      JSON.stringify({ gcIntervalSeconds: 1, gcGraceSeconds: 0, scrubIntervalSeconds: 0 }),
    );
    server = await startChildServer(join(dir, "data"), join(dir, "config.json"));
    const url = server.url;
    const base = Buffer.from(prng(90, 4 * MiB));
    const variant = (seed: number) =>
      Buffer.concat([base.subarray(0, (1 + (seed % 3)) * MiB), Buffer.from(prng(seed, MiB))]);
    const kept = new Map<string, Buffer>();
    const ingested: { id: string; data: Buffer }[] = [];
    const deadline = Date.now() + 15_000;
    let collections = 0;

    const uploader = async () => {
      for (let i = 0; Date.now() < deadline; i++) {
        const data = variant(200 + i);
        const id = await upload(url, data);
        // Every other one deleted at once: its chunks, shared with the ingests, become garbage.
        if (i % 2 === 0)
          expect((await fetch(`${url}/v2/images/${id}`, { method: "DELETE" })).status).toBe(204);
        else kept.set(id, data);
      }
    };
    const ingester = async (w: number) => {
      for (let i = 0; Date.now() < deadline; i++) {
        const data = variant(1000 * w + i);
        const file = join(dir, `in-${w}-${i}`);
        await writeFile(file, data);
        const r = await tessera("ingest", file);
        expect(r.status, r.err).toBe(0);
        ingested.push({ id: (JSON.parse(r.out) as { manifestId: string }).manifestId, data });
      }
    };
    const collector = async () => {
      while (Date.now() < deadline) {
        const r = await tessera("gc", "--grace", "0");
        expect(r.status, r.err).toBe(0);
        collections++;
      }
    };
    await Promise.all([uploader(), ingester(1), ingester(2), collector()]);
    expect(ingested.length).toBeGreaterThan(2);
    expect(collections).toBeGreaterThan(2);

    for (const [id, data] of kept) {
      const got = Buffer.from(await (await fetch(`${url}/v2/images/${id}/file`)).arrayBuffer());
      expect(got.equals(data), id).toBe(true);
    }
    await server.kill();
    server = undefined;
    // Offline now: one more collection with no grace, then every ingested object reads back.
    expect((await tessera("gc", "--grace", "0")).status).toBe(0);
    for (const { id, data } of ingested) expect((await cat(id)).equals(data), id).toBe(true);
    const fsck = await tessera("fsck");
    expect(fsck.status, fsck.err).toBe(0);
    expect(JSON.parse(fsck.out).stores[0]).toMatchObject({ badChunks: 0, missingChunks: 0, missingPacks: 0 });
  });
});
