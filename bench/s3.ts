/**
 * `npm run bench:s3`: the engine on S3 stores beside the filesystem store, in the same run:
 * ingest and download MB/s, requests per GiB ingested, objects per GiB stored; then 1,000
 * images that share a base image. S3 servers: s3rver (npm, started here) and Ceph radosgw
 * with bluestore (started here with .ci/ceph-rgw.sh when Ceph is installed, or the one named
 * by S3_ENDPOINT/S3_KEY/S3_SECRET). A server that cannot run is listed as not measured.
 *
 *   --size-mb N      random data ingested and read back per store (default 1024)
 *   --images N       images sharing a base (default 1000)
 *   --base-mb N      the shared base's size (default 4)
 *   --unique-kb N    each image's own data (default 64)
 *   --dir DIR        scratch directory (default $TMPDIR/tessera-bench-s3)
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { Engine } from "../src/engine/engine.js";
import { readFilePieces } from "../src/engine/file-source.js";
import { type BackendCounts, CountingBackend } from "../src/store/counting-backend.js";
import { openBackend, type StoreConfig, storeEngineDefaults } from "../src/store/open-store.js";
import { log, makeRandomFile, mbps, timed } from "./common.js";

const { values: opt } = parseArgs({
  options: {
    "size-mb": { type: "string", default: "1024" },
    images: { type: "string", default: "1000" },
    "base-mb": { type: "string", default: "4" },
    "unique-kb": { type: "string", default: "64" },
    dir: { type: "string", default: join(tmpdir(), "tessera-bench-s3") },
  },
});
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const scratch = opt.dir;

interface Target {
  name: string;
  store: StoreConfig;
  stop: () => Promise<void>;
}

async function startS3rver(): Promise<Target> {
  const dir = join(scratch, "s3rver");
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const child: ChildProcess = spawn(
    process.execPath,
    ["--openssl-legacy-provider", "test/helpers/s3rver-child.mjs", dir, "bench", "0"],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once("line", resolve);
    child.once("exit", (c) => reject(new Error(`s3rver exited ${c}`)));
  });
  const { port } = JSON.parse(line) as { port: number };
  return {
    name: "s3rver",
    store: s3(`http://127.0.0.1:${port}`, "bench", "S3RVER", "S3RVER"),
    stop: async () => {
      child.kill("SIGKILL");
    },
  };
}

function s3(endpoint: string, bucket: string, key: string, secret: string): StoreConfig {
  return {
    type: "s3",
    endpoint,
    region: "us-east-1",
    bucket,
    forcePathStyle: true,
    accessKeyId: key,
    secretAccessKey: secret,
  };
}

async function startRadosgw(): Promise<Target | undefined> {
  let endpoint = process.env.S3_ENDPOINT;
  let stop = async () => {};
  if (!endpoint) {
    if (spawnSync("sh", ["-c", "command -v radosgw"]).status !== 0) return undefined;
    const dir = join(scratch, "rgw");
    const env = {
      ...process.env,
      OSD_STORE: "bluestore",
      OSD_BYTES: "16G",
      RGW_PORT: "7481",
      MON_PORT: "3301",
    };
    const r = spawnSync(".ci/ceph-rgw.sh", ["start", dir], { env, stdio: ["ignore", "ignore", "inherit"] });
    if (r.status !== 0) return undefined;
    endpoint = "http://127.0.0.1:7481";
    stop = async () => {
      spawnSync(".ci/ceph-rgw.sh", ["stop", dir], { env, stdio: "ignore" });
      await rm(dir, { recursive: true, force: true });
    };
  }
  const key = process.env.S3_KEY ?? "TESTKEY";
  const secret = process.env.S3_SECRET ?? "TESTSECRET";
  const bucket = `bench-${Date.now()}`;
  const c = new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: key, secretAccessKey: secret },
  });
  await c.send(new CreateBucketCommand({ Bucket: bucket }));
  c.destroy();
  return { name: "radosgw (bluestore)", store: s3(endpoint, bucket, key, secret), stop };
}

async function open(t: Target, run: string): Promise<{ engine: Engine; counts: BackendCounts }> {
  const dir = join(scratch, `${t.name.split(" ")[0]}-${run}`);
  await rm(dir, { recursive: true, force: true });
  let counter: CountingBackend | undefined;
  const store: StoreConfig =
    t.store.type === "s3"
      ? { ...t.store, prefix: `${run}/` }
      : { type: "filesystem", path: join(dir, "objects") };
  const backend = await openBackend(store, dir, true, {
    innermost: (b) => {
      counter = new CountingBackend(b);
      return counter;
    },
  });
  const engine = await Engine.open(join(dir, "catalog"), backend, storeEngineDefaults(store));
  return { engine, counts: (counter as CountingBackend).counts };
}

async function objectsStored(engine: Engine): Promise<{ objects: number; bytes: number }> {
  let objects = 0;
  let bytes = 0;
  for await (const o of engine.store().backend.list("")) {
    objects++;
    bytes += o.size;
  }
  return { objects, bytes };
}

async function measure(t: Target, random: string, size: number) {
  const { engine, counts } = await open(t, "random");
  try {
    const ingest = await timed(() => engine.ingest(readFilePieces(random)));
    const afterIngest = { ...counts };
    const stored = await objectsStored(engine);
    const read = await timed(async () => {
      for await (const _ of engine.read(ingest.value.manifestId));
    });
    const row = {
      ingestMBps: mbps(size, ingest.s),
      readMBps: mbps(size, read.s),
      putsPerGiB: Math.round((afterIngest.puts / size) * GiB),
      getsPerGiBRead: Math.round(((counts.gets - afterIngest.gets) / size) * GiB),
      objectsPerGiBStored: Math.round((stored.objects / stored.bytes) * GiB),
    };
    log(
      `${t.name.padEnd(20)} ${size / MiB} MiB random: ingest ${row.ingestMBps} MB/s, read ${row.readMBps} MB/s, ` +
        `${row.putsPerGiB} PUTs/GiB, ${row.getsPerGiBRead} GETs/GiB read, ${row.objectsPerGiBStored} objects/GiB stored`,
    );
    return row;
  } finally {
    await engine.close();
  }
}

async function sharedBase(t: Target) {
  const images = Number(opt.images);
  const base = Buffer.alloc(Number(opt["base-mb"]) * MiB);
  for (let i = 0; i < base.length; i += 4)
    base.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 7)) >>> 0, i);
  const unique = Number(opt["unique-kb"]) * 1024;
  const { engine, counts } = await open(t, "shared");
  try {
    let logical = 0;
    const run = await timed(async () => {
      for (let n = 0; n < images; n++) {
        const own = Buffer.alloc(unique);
        for (let i = 0; i < unique; i += 4)
          own.writeUInt32LE((Math.imul(n + 1, 0x9e3779b1) ^ Math.imul(i, 40503)) >>> 0, i);
        logical += base.length + unique;
        await engine.ingest(
          (async function* () {
            yield base;
            yield own;
          })(),
        );
      }
    });
    const stored = await objectsStored(engine);
    const uniqueBytes = base.length + images * unique;
    const row = {
      images,
      logicalMB: Math.round(logical / 1e6),
      storedMB: Math.round(stored.bytes / 1e6),
      imagesPerSecond: Math.round(images / run.s),
      putsPerGiBIngested: Math.round((counts.puts / logical) * GiB),
      putsPerGiBUnique: Math.round((counts.puts / uniqueBytes) * GiB),
      objects: stored.objects,
    };
    log(
      `${t.name.padEnd(20)} ${images} images on a shared base: ${row.logicalMB} MB in, ${row.storedMB} MB stored, ` +
        `${row.imagesPerSecond} images/s, ${counts.puts} PUTs (${row.putsPerGiBIngested}/GiB ingested, ` +
        `${row.putsPerGiBUnique}/GiB unique), ${stored.objects} objects`,
    );
    return row;
  } finally {
    await engine.close();
  }
}

async function main(): Promise<void> {
  await mkdir(scratch, { recursive: true });
  const size = Number(opt["size-mb"]) * MiB;
  const random = join(scratch, "random.bin");
  await makeRandomFile(random, size);
  const results: Record<string, unknown> = {};
  const targets: (Target | string)[] = [
    { name: "filesystem", store: { type: "filesystem" }, stop: async () => {} },
  ];
  targets.push(await startS3rver().catch((e: Error) => `s3rver: not measured (${e.message})`));
  targets.push((await startRadosgw().catch(() => undefined)) ?? "radosgw: not measured (Ceph not installed)");
  for (const t of targets) {
    if (typeof t === "string") {
      log(t);
      results[t.split(":")[0] as string] = "not measured";
      continue;
    }
    try {
      results[t.name] = { random: await measure(t, random, size), sharedBase: await sharedBase(t) };
    } finally {
      await t.stop();
    }
  }
  const fs = (results.filesystem as { random: { readMBps: number } }).random.readMBps;
  const rgw = (results["radosgw (bluestore)"] as { random?: { readMBps: number } } | undefined)?.random
    ?.readMBps;
  if (rgw) {
    results.radosgwReadOverFilesystem = Math.round((rgw / fs) * 100) / 100;
    log(`radosgw read ÷ filesystem read: ×${results.radosgwReadOverFilesystem}`);
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
