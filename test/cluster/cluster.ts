/**
 * A Tessera cluster of real parts for test/cluster: Debian's PostgreSQL as the shared catalog,
 * one S3 store (Ceph radosgw when S3_ENDPOINT is set, as CI sets it, in a fresh bucket; npm
 * s3rver otherwise), three `tessera serve --workers 1` child processes (dist/) on loopback ports
 * from freePorts, each its own data directory, and Debian's HAProxy round-robin in front of
 * them. Tokens-mode auth, so images have owners (members, quotas). Every process is stopped by
 * its pid in close(), a node restarted after a crash (restartNode) included.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import type { S3BackendOptions } from "../../src/store/s3-backend.js";
import { BIN, type ChildServer, startChildServer } from "../helpers/child-server.js";
import { type Haproxy, haveHaproxy, startHaproxy } from "../helpers/haproxy.js";
import { freePorts } from "../helpers/ports.js";
import { havePostgres, type Postgres, startPostgres } from "../helpers/postgres.js";
import { type RunResult, runAsync } from "../helpers/run.js";
import { radosgw, type S3rver, startS3rver } from "../helpers/s3.js";

export const PY = "/usr/bin/python3";
export const OPENSTACK = "/usr/bin/openstack";
export const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

/** Whether the cluster's parts are here: throws in CI when one is missing, warns elsewhere. */
export function requireClusterParts(what: string): boolean {
  const missing = [
    ...(havePostgres() ? [] : ["postgresql"]),
    ...(haveHaproxy() ? [] : ["haproxy"]),
    ...(existsSync(OPENSTACK) ? [] : ["python3-openstackclient"]),
    ...(spawnSync(PY, ["-c", "import openstack"]).status === 0 ? [] : ["python3-openstacksdk"]),
  ];
  if (missing.length === 0) return true;
  if (process.env.CI)
    throw new Error(`CI must have ${missing.join(", ")} (.ci/run installs them) for ${what}`);
  console.warn(`skipping ${what}: missing ${missing.join(", ")} (apt-get install ${missing.join(" ")})`);
  return false;
}

/** Tokens-mode callers: "<name>-token". */
export const PEOPLE = {
  admin: { project: "ops", user: "root", roles: ["admin", "member"] },
  alice: { project: "alpha", user: "alice", roles: ["member"] },
  bob: { project: "beta", user: "bob", roles: ["member"] },
  carol: { project: "gamma", user: "carol", roles: ["member"] },
};
export type Person = keyof typeof PEOPLE;
/** Project gamma may own this many images. */
export const GAMMA_IMAGES = 3;

export interface Cluster {
  work: string;
  pg: Postgres;
  nodes: ChildServer[];
  dataDirs: string[];
  configFile: string;
  haproxy: Haproxy;
  /** "radosgw", "s3rver" or "shared directory". */
  storeKind: string;
  /** The store's objects now: how many, and their bytes. */
  storeObjects(): Promise<{ count: number; bytes: number }>;
  /**
   * SIGKILL to every process of node `i` (its index in `nodes`): the serve process and the
   * workers it forked, as when the machine dies; resolves with their pids once none runs.
   */
  killNode(i: number): Promise<number[]>;
  /** `tessera serve` again on node `i`'s data directory and port; it replaces `nodes[i]`. */
  restartNode(i: number): Promise<ChildServer>;
  close(): Promise<void>;
}

export interface ClusterOptions {
  /** Where the shared store is: S3 (radosgw or s3rver, the default) or one directory every node mounts. */
  store?: "s3" | "filesystem";
  /** Settings merged over the cluster's configuration (leaseSeconds, cache, ...). */
  config?: Record<string, unknown>;
  /** Settings merged over the shared store's entry in `stores` (packSize: S3 only, ...). */
  storeSettings?: Record<string, unknown>;
  /** `--workers` of every node (default 1: one process per node, no primary). */
  workers?: number;
}

export async function startTesseraCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const work = await mkdtemp(join(tmpdir(), "tessera-cluster-"));
  await chmod(work, 0o755);
  const closers: (() => Promise<unknown>)[] = [() => rm(work, { recursive: true, force: true })];
  const close = async () => {
    for (const c of closers.splice(0).reverse()) await c().catch((e) => console.warn("cluster close:", e));
  };
  try {
    const pg = await startPostgres();
    closers.push(() => pg.destroy());
    const store = await sharedStore(work, options.store ?? "s3", closers);
    const tokens = Object.fromEntries(Object.entries(PEOPLE).map(([n, p]) => [`${n}-token`, p]));
    await writeFile(join(work, "tokens.json"), JSON.stringify({ tokens }));
    const configFile = join(work, "tessera.json");
    const config = {
      catalog: { type: "postgres", url: await pg.createDatabase(), poolSize: 4 },
      stores: { central: { ...store.config, ...options.storeSettings } },
      defaultStore: "central",
      auth: { mode: "tokens", tokensFile: join(work, "tokens.json") },
      quotas: { projects: { gamma: { image_count_total: GAMMA_IMAGES } } },
      gcIntervalSeconds: 0,
      gcGraceSeconds: 2,
      scrubIntervalSeconds: 0,
      ...options.config,
    };
    await writeFile(configFile, JSON.stringify(config, null, 2));
    const base = await freePorts(3);
    const dataDirs = [1, 2, 3].map((i) => join(work, `node${i}`));
    for (const d of dataDirs) await mkdir(d);
    const start = (i: number) =>
      startChildServer(dataDirs[i], configFile, [
        "--host",
        "127.0.0.1",
        "--port",
        String(base + i),
        "--workers",
        String(options.workers ?? 1),
      ]);
    // Node 1 alone first: it creates the schema and the store's format record (s3rver writes
    // objects in place, so a node starting beside it could read that record half written).
    // Then nodes 2 and 3 at once.
    const nodes = [await start(0)];
    closers.push(() => stopChild(nodes[0]));
    const more = await Promise.allSettled([start(1), start(2)]);
    for (const r of more) {
      if (r.status !== "fulfilled") continue;
      // Looked up when closing: the process then serving as that node (restartNode).
      const k = nodes.push(r.value) - 1;
      closers.push(() => stopChild(nodes[k]));
    }
    for (const r of more) if (r.status === "rejected") throw r.reason;
    const haproxy = await startHaproxy({ backends: nodes.map((n) => n.url), checkPath: "/healthcheck" });
    closers.push(() => haproxy.stop());
    return {
      work,
      pg,
      nodes,
      dataDirs,
      configFile,
      haproxy,
      storeKind: store.kind,
      storeObjects: store.objects,
      killNode: (i) => killTree(nodes[i]),
      async restartNode(i) {
        if (nodes[i].child.exitCode === null && nodes[i].child.signalCode === null)
          throw new Error(`node ${i + 1} is still running`);
        nodes[i] = await start(i);
        return nodes[i];
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

interface SharedStore {
  /** The store's entry in `stores`. */
  config: Record<string, unknown>;
  kind: string;
  /**
   * The objects of the images' data (packs, manifests, the format record), not the images'
   * record objects beside them (docs/format.md, "Image records"), which each new image adds
   * and garbage collection never takes.
   */
  objects(): Promise<{ count: number; bytes: number }>;
}

/** Under `records/`: an image's record object, not data. */
const RECORDS = "records/";

/**
 * The one store of the cluster: S3 (radosgw in a fresh prefix when S3_ENDPOINT is set, s3rver
 * otherwise), or a directory every node names (a shared mount, as NFS would be).
 */
async function sharedStore(
  work: string,
  kind: "s3" | "filesystem",
  closers: (() => Promise<unknown>)[],
): Promise<SharedStore> {
  if (kind === "filesystem") {
    const path = join(work, "shared-store");
    await mkdir(path);
    const objects = async () => {
      let count = 0;
      let bytes = 0;
      for (const e of await readdir(path, { recursive: true, withFileTypes: true })) {
        const file = join(e.parentPath, e.name);
        if (!e.isFile() || relative(path, file).startsWith(RECORDS)) continue;
        count++;
        bytes += (await stat(file)).size;
      }
      return { count, bytes };
    };
    return { config: { type: "filesystem", path }, kind: "shared directory", objects };
  }
  const rgw = await radosgw();
  let s3rver: S3rver | undefined;
  if (!rgw) {
    s3rver = await startS3rver();
    closers.push(() => (s3rver as S3rver).stop());
  }
  const store: S3BackendOptions = rgw
    ? { ...rgw, prefix: `run-${process.pid}-${Date.now()}/` }
    : (s3rver as S3rver).options;
  const s3 = new S3Client({
    endpoint: store.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: {
      accessKeyId: store.accessKeyId as string,
      secretAccessKey: store.secretAccessKey as string,
    },
  });
  closers.push(async () => s3.destroy());
  const objects = async () => {
    let count = 0;
    let bytes = 0;
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: store.bucket, Prefix: store.prefix, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) {
        if (o.Key?.startsWith(`${store.prefix ?? ""}${RECORDS}`)) continue;
        count++;
        bytes += o.Size ?? 0;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return { count, bytes };
  };
  return { config: { type: "s3", ...store }, kind: rgw ? "radosgw" : "s3rver", objects };
}

/** `pid` and every process under it, parents first. */
export function processTree(pid: number): number[] {
  const all = [pid];
  for (let k = 0; k < all.length; k++) {
    const r = spawnSync("ps", ["-o", "pid=", "--ppid", String(all[k])], { encoding: "utf8" });
    all.push(...r.stdout.split(/\s+/).filter(Boolean).map(Number));
  }
  return all;
}

/** Whether `pid` runs: neither gone nor a zombie (which still answers kill(pid, 0)). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/**
 * SIGKILL to `s` and every process under it. The parent first: a primary killed after its
 * workers could fork their replacements in between.
 */
async function killTree(s: ChildServer): Promise<number[]> {
  const pids = processTree(s.child.pid as number);
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
  await s.exited;
  const deadline = Date.now() + 10_000;
  while (pids.some(running)) {
    if (Date.now() > deadline) throw new Error(`still running after SIGKILL: ${pids.filter(running)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return pids;
}

/** SIGTERM by pid (the server finishes what it serves), SIGKILL after 10 s. */
async function stopChild(s: ChildServer): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  s.child.kill("SIGTERM");
  const late = setTimeout(() => s.child.kill("SIGKILL"), 10_000);
  await s.exited;
  clearTimeout(late);
}

/** fetch against `base` as `who`: JSON bodies, or bytes as application/octet-stream. */
export function as(who: Person, base: string) {
  return (method: string, path: string, body?: unknown) => {
    const bytes = body instanceof Uint8Array;
    return fetch(`${base}${path}`, {
      method,
      headers: {
        "x-auth-token": `${who}-token`,
        ...(body === undefined
          ? {}
          : { "content-type": bytes ? "application/octet-stream" : "application/json" }),
      },
      body: body === undefined ? undefined : bytes ? (body as Uint8Array<ArrayBuffer>) : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  };
}

/** A new raw image of `data` through `base` as `who`; its id (fails the test on any error). */
export async function upload(who: Person, base: string, name: string, data: Uint8Array): Promise<string> {
  const call = as(who, base);
  const created = await createImage(who, base, name);
  if (created.status !== 201) throw new Error(`create ${name}: ${created.status} ${await created.text()}`);
  const { id } = (await created.json()) as { id: string };
  const put = await call("PUT", `/v2/images/${id}/file`, data);
  if (put.status !== 204) throw new Error(`upload ${name}: ${put.status} ${await put.text()}`);
  return id;
}

/** GET `path` through `base` as `who`, its JSON. */
export async function getJson<T>(who: Person, base: string, path: string): Promise<T> {
  return (await (await as(who, base)("GET", path)).json()) as T;
}

export interface ListedImage {
  id: string;
  name: string;
  status: string;
  checksum: string | null;
}

/** Every image `who` lists through `base`, page by page. */
export async function listAll(who: Person, base: string): Promise<ListedImage[]> {
  const all: ListedImage[] = [];
  for (let next = "/v2/images?limit=100"; next; ) {
    const page = await getJson<{ images: ListedImage[]; next?: string }>(who, base, next);
    all.push(...page.images);
    next = page.next ?? "";
  }
  return all;
}

/** POST /v2/images through `base` as `who`: a raw image named `name`. */
export function createImage(who: Person, base: string, name: string): Promise<Response> {
  return as(who, base)("POST", "/v2/images", { name, disk_format: "raw", container_format: "bare" });
}

export interface GcStoreReport {
  chunksDropped: number;
  packsTrashed: number;
  orphansTrashed: number;
  objectsDeleted: number;
  bytesDeleted: number;
  trashWaiting: number;
}

/**
 * A collection by the node at `base` (POST /tessera/v1/gc, as `tessera gc` asks a running
 * server; the route's own default grace is 3600 s, the command passes gcGraceSeconds).
 */
export async function collect(base: string, graceSeconds: number): Promise<GcStoreReport> {
  const r = await as("admin", base)("POST", "/tessera/v1/gc", { graceSeconds });
  if (r.status !== 200) throw new Error(`gc on ${base}: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { stores: GcStoreReport[] }).stores[0];
}

/**
 * An upload of `data` to image `id` through `base` that sends its first `first` bytes, then
 * waits for release() before the rest; `answer` is the server's status.
 */
export function gatedUpload(base: string, id: string, data: Uint8Array, first: number) {
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const body = new ReadableStream<Uint8Array>({
    async start(ctl) {
      ctl.enqueue(data.subarray(0, first));
      await gate;
      ctl.enqueue(data.subarray(first));
      ctl.close();
    },
  });
  const answer = fetch(`${base}/v2/images/${id}/file`, {
    method: "PUT",
    headers: { "x-auth-token": "admin-token", "content-type": "application/octet-stream" },
    body,
    duplex: "half",
  } as RequestInit).then((r) => r.status);
  return { answer, release };
}

/** The md5 of image `id` downloaded through `base` (throws unless 200). */
export async function downloadMd5(who: Person, base: string, id: string): Promise<string> {
  const res = await as(who, base)("GET", `/v2/images/${id}/file`);
  const body = new Uint8Array(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`download ${id}: ${res.status} ${Buffer.from(body).toString()}`);
  return md5(body);
}

/** The openstack CLI (Debian's) as `who` against `url`, in `cwd` with HOME there. */
export function openstack(who: Person, url: string, cwd: string, ...args: string[]): Promise<RunResult> {
  return runAsync(
    OPENSTACK,
    ["--os-auth-type", "admin_token", "--os-token", `${who}-token`, "--os-endpoint", `${url}/v2`, ...args],
    { cwd, env: { ...process.env, HOME: cwd, OS_CLOUD: "", PYTHONWARNINGS: "ignore" }, timeout: 120_000 },
  );
}

/** test/cluster/sdk_cluster.py (openstacksdk, Debian's python3) as `who` against `url`. */
export function sdk(who: Person, url: string, cwd: string, ...args: string[]): Promise<RunResult> {
  const script = new URL("./sdk_cluster.py", import.meta.url).pathname;
  return runAsync(PY, [script, url, `${who}-token`, ...args], {
    cwd,
    env: { ...process.env, HOME: cwd, OS_CLOUD: "", PYTHONWARNINGS: "ignore" },
    timeout: 120_000,
  });
}

/** The shipped `tessera` command with `args` (for gc and fsck beside the running nodes). */
export function tessera(...args: string[]): Promise<RunResult> {
  return runAsync(process.execPath, [BIN, ...args], { timeout: 120_000 });
}
