/**
 * Hundreds of clients that stall or trickle, against the shipped server in a child process whose
 * memory and threads are sampled from /proc: 500 uploads that send a MiB and stop, 200 downloads
 * that read nothing and 20 that read a little now and then. The server stays within 1 GiB of
 * RSS and a bounded number of threads, answers other clients throughout, cuts the stalled ones
 * after clientIdleSeconds and leaves every stalled upload's image queued.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { Agent, type ClientRequest, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { type ChildServer, startChildServer } from "../helpers/child-server.js";
import { prng } from "../helpers/data.js";

const MiB = 1024 * 1024;
const STALLED_UPLOADS = 500;
const STALLED_DOWNLOADS = 200;
const TRICKLING_DOWNLOADS = 20;
const IDLE_SECONDS = 4;

let dir: string;
let server: ChildServer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tessera-stalled-"));
  const config = join(dir, "config.json");
  await writeFile(
    config,
    JSON.stringify({
      // One process: its memory and threads, read from /proc, are the server's.
      workers: 1,
      clientIdleSeconds: IDLE_SECONDS,
      gcIntervalSeconds: 0,
      scrubIntervalSeconds: 0,
    }),
  );
  server = await startChildServer(join(dir, "data"), config);
});
afterAll(async () => {
  await server?.kill();
  await rm(dir, { recursive: true, force: true });
});

/** The server's resident memory (bytes) and threads, from /proc. */
function sample(pid: number): { rss: number; threads: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  const threads = Number(/Threads:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { rss, threads };
}

const json = { "Content-Type": "application/json" };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("500 stalled uploads, 200 stalled and 20 trickling downloads: RSS ≤ 1 GiB, threads bounded, others served, stalled images queued", {
  timeout: 10 * 60_000,
}, async () => {
  const url = server.url;
  const pid = server.child.pid as number;
  // Every client its own connection, as from as many machines.
  const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  const opened: ClientRequest[] = [];

  const big = (await (
    await fetch(`${url}/v2/images`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ name: "big", disk_format: "raw", container_format: "bare" }),
    })
  ).json()) as { id: string };
  const bigData = prng(3, 96 * MiB);
  const put = await fetch(`${url}/v2/images/${big.id}/file`, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream" },
    body: new Uint8Array(bigData),
  });
  expect(put.status).toBe(204);
  const idle = sample(pid);

  let peak = idle;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const now = sample(pid);
      peak = { rss: Math.max(peak.rss, now.rss), threads: Math.max(peak.threads, now.threads) };
      await sleep(100);
    }
  })();
  // Others are served throughout: a listing every 100 ms, none slower than 5 s or failing.
  const probes: number[] = [];
  const prober = (async () => {
    while (sampling) {
      const t = performance.now();
      const res = await fetch(`${url}/v2/images?limit=5`);
      await res.arrayBuffer();
      expect(res.status).toBe(200);
      probes.push(performance.now() - t);
      await sleep(100);
    }
  })();

  const ids: string[] = [];
  for (let i = 0; i < STALLED_UPLOADS; i++) {
    const res = await fetch(`${url}/v2/images`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ name: `stalled-${i}`, disk_format: "raw", container_format: "bare" }),
    });
    ids.push(((await res.json()) as { id: string }).id);
  }
  const statuses: number[] = [];
  const piece = Buffer.from(prng(9, MiB));
  for (const [i, id] of ids.entries()) {
    const req = request(`${url}/v2/images/${id}/file`, {
      method: "PUT",
      agent,
      headers: { "Content-Type": "application/octet-stream", "Content-Length": 64 * MiB },
    });
    req.on("response", (res) => {
      statuses.push(res.statusCode as number);
      res.resume();
    });
    req.on("error", () => {});
    // Distinct bytes per upload: nothing deduplicates, each holds what it sent.
    req.write(Buffer.concat([Buffer.from(prng(i, 64)), piece]));
    opened.push(req);
  }
  for (let i = 0; i < STALLED_DOWNLOADS + TRICKLING_DOWNLOADS; i++) {
    const trickle = i < TRICKLING_DOWNLOADS;
    const req = request(`${url}/v2/images/${big.id}/file`, { agent }, (res) => {
      res.pause();
      if (!trickle) return;
      const tick = setInterval(() => {
        res.read(64 * 1024);
        if (res.destroyed || res.readableEnded) clearInterval(tick);
      }, 200);
      res.on("close", () => clearInterval(tick));
      res.on("error", () => clearInterval(tick));
    });
    req.on("error", () => {});
    req.end();
    opened.push(req);
  }
  // Past the idle timeout: the stalled are cut; the trickling go on.
  await sleep((IDLE_SECONDS + 4) * 1000);
  sampling = false;
  await Promise.all([sampler, prober]);
  for (const r of opened) r.destroy();

  console.log(
    `stalled load: idle ${(idle.rss / MiB).toFixed(0)} MiB ${idle.threads} threads; peak ${(peak.rss / MiB).toFixed(0)} MiB ${peak.threads} threads; ` +
      `listing ${probes.length}× max ${Math.max(...probes).toFixed(0)} ms; uploads answered ${statuses.length} (${statuses.filter((s) => s === 503).length}× 503)`,
  );
  expect(peak.rss).toBeLessThanOrEqual(1024 * MiB);
  expect(peak.threads).toBeLessThanOrEqual(idle.threads + 8);
  expect(probes.length).toBeGreaterThan(20);
  expect(Math.max(...probes)).toBeLessThan(5000);
  // Refused uploads were told so at once; accepted ones were cut: all their images are queued.
  expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(0);
  const deadline = Date.now() + 30_000;
  for (const id of ids) {
    for (;;) {
      const img = (await (await fetch(`${url}/v2/images/${id}`)).json()) as { status: string };
      if (img.status === "queued" || Date.now() > deadline) {
        expect(img.status, id).toBe("queued");
        break;
      }
      await sleep(200);
    }
  }
  // And the server takes uploads again.
  const again = await fetch(`${url}/v2/images/${ids[0]}/file`, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream" },
    body: "after the storm",
  });
  expect(again.status).toBe(204);
});
