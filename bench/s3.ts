import { mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Engine } from "../src/engine/engine.js";
import { readFilePieces } from "../src/engine/file-source.js";
import { type BackendCounts, CountingBackend } from "../src/store/counting-backend.js";
import { openBackend, type StoreConfig, storeEngineDefaults } from "../src/store/open-store.js";
import { log, makeRandomFile, mbps, median, timed } from "./common.js";
import { startRadosgw, startS3rver, type Target } from "./s3-servers.js";

const { values: opt } = parseArgs({
  options: {
    "size-mb": { type: "string", default: "1024" },
    images: { type: "string", default: "1000" },
    "base-mb": { type: "string", default: "4" },
    "unique-kb": { type: "string", default: "64" },
    dir: { type: "string", default: join(tmpdir(), "tessera-bench-s3") },
    rounds: { type: "string", default: "3" },
  },
});
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const scratch = opt.dir;

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

async function measure(t: Target, random: string, size: number, run: string) {
  const { engine, counts } = await open(t, run);
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
  targets.push(await startS3rver(scratch).catch((e: Error) => `s3rver: not measured (${e.message})`));
  targets.push(
    (await startRadosgw(scratch).catch(() => undefined)) ?? "radosgw: not measured (Ceph not installed)",
  );
  const live = targets.filter((t): t is Target => typeof t !== "string");
  for (const t of targets) {
    if (typeof t === "string") {
      log(t);
      results[t.split(":")[0] as string] = "not measured";
    }
  }
  try {
    // Rounds go round the stores in turn, each a fresh ingest and a first (cold) read of it,
    // so the machine's drift spreads over all of them; medians per store.
    const rows = new Map<Target, Awaited<ReturnType<typeof measure>>[]>(live.map((t) => [t, []]));
    for (let r = 0; r < Number(opt.rounds); r++) {
      for (const t of live) rows.get(t)?.push(await measure(t, random, size, `random${r}`));
    }
    for (const t of live) {
      const mine = rows.get(t) ?? [];
      const first = mine[0] as (typeof mine)[number];
      const random = {
        ...first,
        ingestMBps: median(mine.map((x) => x.ingestMBps)),
        readMBps: median(mine.map((x) => x.readMBps)),
        readMBpsRounds: mine.map((x) => x.readMBps),
      };
      log(
        `${t.name.padEnd(20)} median of ${mine.length}: ingest ${random.ingestMBps} MB/s, read ${random.readMBps} MB/s`,
      );
      results[t.name] = { random, sharedBase: await sharedBase(t) };
    }
  } finally {
    for (const t of live) await t.stop();
  }
  const fs = (results.filesystem as { random: { readMBps: number } }).random.readMBps;
  const rgw = (results["radosgw (bluestore)"] as { random?: { readMBps: number } } | undefined)?.random
    ?.readMBps;
  if (rgw) {
    results.radosgwReadOverFilesystem = Math.round((rgw / fs) * 100) / 100;
    log(`radosgw read ÷ filesystem read (medians): ×${results.radosgwReadOverFilesystem}`);
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
