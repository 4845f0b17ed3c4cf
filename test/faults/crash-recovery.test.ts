/**
 * kill -9 at random points: the shipped server, over two filesystem stores, is killed in the
 * middle of uploads, stages, imports into one and two stores, copies, deletes and collections,
 * round after round. After each restart every image that was ever seen active (and not deleted
 * with an answer) is active with the right md5, an acknowledged delete stays deleted, and fsck
 * finds the stores clean.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { BIN, type ChildServer, startChildServer } from "../helpers/child-server.js";
import { prng } from "../helpers/data.js";
import { runAsync } from "../helpers/run.js";

const MiB = 1024 * 1024;
const IMPORT_ROUNDS = 52;
const OTHER_ROUNDS = 30;

let dir: string;
let server: ChildServer | undefined;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tessera-crash-"));
  await writeFile(
    join(dir, "config.json"),
    JSON.stringify({
      stores: { local: { type: "filesystem" }, extra: { type: "filesystem", path: join(dir, "extra") } },
      defaultStore: "local",
      gcIntervalSeconds: 0,
      scrubIntervalSeconds: 0,
    }),
  );
});
afterAll(async () => {
  await server?.kill();
  await rm(dir, { recursive: true, force: true });
});

/** A seeded generator, so that a failing run can be told apart and repeated. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");
const json = { "Content-Type": "application/json" };
const octets = { "Content-Type": "application/octet-stream" };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface State {
  /** Images seen active, with their md5. */
  active: Map<string, string>;
  /** Images whose delete was sent and not answered before the kill: gone or intact. */
  maybeDeleted: Set<string>;
}

async function create(url: string, name: string): Promise<string> {
  const res = await fetch(`${url}/v2/images`, {
    method: "POST",
    headers: json,
    body: JSON.stringify({ name, disk_format: "raw", container_format: "bare" }),
  });
  return ((await res.json()) as { id: string }).id;
}

async function imageOf(url: string, id: string): Promise<Record<string, unknown> | undefined> {
  const res = await fetch(`${url}/v2/images/${id}`);
  return res.status === 200 ? ((await res.json()) as Record<string, unknown>) : undefined;
}

/** Bytes for round `n`: a base shared by many images, then a tail of its own. */
function dataFor(n: number, rand: () => number): Buffer {
  const base = prng(7, 6 * MiB);
  const own = prng(1000 + n, Math.floor((0.25 + rand()) * MiB));
  return Buffer.concat([base.subarray(0, Math.floor(rand() * 6) * MiB), own]);
}

/** An import into `stores`; `untilActive`: the kill comes as soon as the image is active. */
async function importRound(
  url: string,
  s: State,
  n: number,
  rand: () => number,
  stores: string[],
  untilActive: boolean,
) {
  const data = Buffer.concat([dataFor(n, rand), prng(n, 4 * MiB)]);
  const id = await create(url, `import-${n}`);
  const staged = await fetch(`${url}/v2/images/${id}/stage`, {
    method: "PUT",
    headers: octets,
    body: new Uint8Array(data),
  });
  expect(staged.status).toBe(204);
  const started = await fetch(`${url}/v2/images/${id}/import`, {
    method: "POST",
    headers: json,
    body: JSON.stringify({ method: { name: "glance-direct" }, stores }),
  });
  expect(started.status).toBe(202);
  const watch = async () => {
    for (;;) {
      const img = await imageOf(url, id);
      if (img?.status === "active") {
        s.active.set(id, md5(data));
        return;
      }
      await sleep(5);
    }
  };
  return { watch: watch(), killAfter: untilActive ? undefined : rand() * 400 };
}

const OPS = ["upload", "stage", "import-one", "copy", "delete", "gc"] as const;

/** One round's operation; resolves when it ended or the server died under it. */
async function otherRound(url: string, s: State, n: number, rand: () => number, op: (typeof OPS)[number]) {
  const ids = [...s.active.keys()];
  const pick = ids[Math.floor(rand() * ids.length)];
  if (op === "upload" || op === "stage") {
    const data = dataFor(n, rand);
    const id = await create(url, `${op}-${n}`);
    const res = await fetch(`${url}/v2/images/${id}/${op === "upload" ? "file" : "stage"}`, {
      method: "PUT",
      headers: octets,
      body: new Uint8Array(data),
    });
    if (op === "upload" && res.status === 204) s.active.set(id, md5(data));
  } else if (op === "import-one") {
    const r = await importRound(url, s, n, rand, ["local"], false);
    await r.watch;
  } else if (op === "copy" && pick) {
    const img = await imageOf(url, pick);
    if (img && !(img.stores as string).includes("extra")) {
      await fetch(`${url}/v2/images/${pick}/import`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ method: { name: "copy-image" }, stores: ["extra"] }),
      });
      for (;;) {
        const now = await imageOf(url, pick);
        if (!now?.os_glance_import_task) break;
        await sleep(5);
      }
    }
  } else if (op === "delete" && pick) {
    s.maybeDeleted.add(pick);
    const res = await fetch(`${url}/v2/images/${pick}`, { method: "DELETE" });
    if (res.status === 204) {
      s.active.delete(pick);
      s.maybeDeleted.delete(pick);
    }
  } else if (op === "gc") {
    const token = (await import("node:fs")).readFileSync(join(dir, "data", "tessera.token"), "utf8").trim();
    await fetch(`${url}/tessera/v1/gc`, {
      method: "POST",
      headers: { ...json, "X-Auth-Token": token },
      body: JSON.stringify({ graceSeconds: 0 }),
    });
  }
}

/** After a restart: every image seen active is active and whole. */
/**
 * `tessera fsck` on the stores as a restart found them. It reads beside the server (fsck without
 * --repair is read-only) while the images are read back, and is done before the round writes:
 * a collection with no grace deleting packs under it would read as missing packs.
 */
function fsck(round: string): Promise<void> {
  const args = [BIN, "fsck", "--data", join(dir, "data"), "--config", join(dir, "config.json")];
  return runAsync(process.execPath, args).then((r) => {
    expect(r.status, `${round}: fsck ${r.out} ${r.err}`).toBe(0);
  });
}

async function check(url: string, s: State, round: string): Promise<void> {
  for (const [id, sum] of s.active) {
    const img = await imageOf(url, id);
    if (!img && s.maybeDeleted.has(id)) {
      s.active.delete(id);
      s.maybeDeleted.delete(id);
      continue;
    }
    expect(img?.status, `${round}: image ${id}`).toBe("active");
    const body = new Uint8Array(await (await fetch(`${url}/v2/images/${id}/file`)).arrayBuffer());
    expect(md5(body), `${round}: image ${id}`).toBe(sum);
  }
}

test(`${IMPORT_ROUNDS} kills during imports into two stores and ${OTHER_ROUNDS} during other writes lose no active image`, {
  timeout: 20 * 60_000,
}, async () => {
  const seed = Number(process.env.TESSERA_FAULT_SEED ?? Date.now() % 100_000);
  console.log(`crash-recovery seed ${seed} (TESSERA_FAULT_SEED repeats it)`);
  const rand = mulberry32(seed);
  const s: State = { active: new Map(), maybeDeleted: new Set() };
  const data = join(dir, "data");
  const config = join(dir, "config.json");
  const rounds = [
    ...Array.from({ length: IMPORT_ROUNDS }, (_, i) => ({ kind: "import-two" as const, i })),
    ...Array.from({ length: OTHER_ROUNDS }, (_, i) => ({
      kind: OPS[i % OPS.length] as (typeof OPS)[number],
      i,
    })),
  ].sort(() => rand() - 0.5);
  const spent = { start: 0, check: 0, op: 0 };
  const clock = (what: keyof typeof spent, since: number) => {
    spent[what] += performance.now() - since;
    return performance.now();
  };
  for (const [n, r] of rounds.entries()) {
    let t = performance.now();
    server = await startChildServer(data, config);
    t = clock("start", t);
    const url = server.url;
    const label = `round ${n} (${r.kind}, seed ${seed})`;
    await Promise.all([fsck(`${label}, before`), check(url, s, `${label}, before`)]);
    t = clock("check", t);
    // A few images at a time: each restart reads every one back.
    for (const id of [...s.active.keys()].slice(0, Math.max(0, s.active.size - 4))) {
      expect((await fetch(`${url}/v2/images/${id}`, { method: "DELETE" })).status).toBe(204);
      s.active.delete(id);
    }
    let work: Promise<unknown>;
    let delay: number | undefined;
    if (r.kind === "import-two") {
      const untilActive = r.i % 2 === 0;
      const started = await importRound(url, s, n, rand, ["local", "extra"], untilActive);
      work = started.watch;
      delay = started.killAfter;
    } else {
      work = otherRound(url, s, n, rand, r.kind);
      delay = rand() * 500;
    }
    work = work.catch(() => {}); // the server dies under it
    if (delay === undefined) await work;
    else await Promise.race([work, sleep(delay)]);
    await server.kill();
    await work;
    clock("op", t);
    server = undefined;
  }
  server = await startChildServer(data, config);
  await Promise.all([check(server.url, s, "after the last round"), fsck("after the last round")]);
  const secs = Object.entries(spent).map(([k, v]) => `${k} ${(v / 1000).toFixed(0)} s`);
  console.log(
    `crash-recovery: ${rounds.length} kills, ${s.active.size} images active at the end; ${secs.join(", ")}`,
  );
});
