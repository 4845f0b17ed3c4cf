/**
 * `npm run bench:swift`: ingest and download of one image through the Swift backend (native
 * API), through the S3 backend on the same Swift (its s3api middleware), and on the local
 * filesystem, in interleaved rounds of the same run; requests per GiB for each. Swift is started
 * on loopback by .ci/swift.sh (single node, one replica, Debian's packages).
 *
 *   --file PATH   the image (default corpus/base.qcow2, a real Debian qcow2)
 *   --rounds N    default 3
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { Engine } from "../src/engine/engine.js";
import { readFilePieces } from "../src/engine/file-source.js";
import { type BackendCounts, CountingBackend } from "../src/store/counting-backend.js";
import { openBackend, type StoreConfig, storeEngineDefaults } from "../src/store/open-store.js";
import { freePort, log, mbps, median, ratio } from "./common.js";

const { values: opt } = parseArgs({
  options: {
    file: { type: "string", default: "corpus/base.qcow2" },
    rounds: { type: "string", default: "3" },
  },
});
const run = promisify(execFile);
const CI_DIR = new URL("../../.ci/", import.meta.url).pathname;
const GiB = 1024 ** 3;

async function measure(store: StoreConfig, scratch: string, size: number) {
  await rm(scratch, { recursive: true, force: true });
  let counter: CountingBackend | undefined;
  const backend = await openBackend(store, scratch, true, {
    innermost: (b) => {
      counter = new CountingBackend(b);
      return counter;
    },
  });
  const engine = await Engine.open(join(scratch, "catalog"), backend, storeEngineDefaults(store));
  try {
    let t = performance.now();
    const { manifestId } = await engine.ingest(readFilePieces(opt.file));
    const ingest = (performance.now() - t) / 1000;
    t = performance.now();
    let read = 0;
    for await (const p of engine.read(manifestId)) read += p.length;
    const download = (performance.now() - t) / 1000;
    if (read !== size) throw new Error(`read ${read} of ${size} bytes`);
    const c = (counter as CountingBackend).counts as BackendCounts;
    const requests = c.puts + c.gets + c.stats + c.deletes + c.lists;
    return {
      ingestMBps: mbps(size, ingest),
      downloadMBps: mbps(size, download),
      requestsPerGiB: requests / ((2 * size) / GiB),
    };
  } finally {
    await engine.close();
  }
}

async function main(): Promise<void> {
  const size = (await stat(opt.file)).size;
  const dir = await mkdtemp(join(tmpdir(), "tessera-bench-swift-"));
  const port = await freePort();
  const env = {
    ...process.env,
    SWIFT_PORT: String(port),
    SWIFT_BACKEND_PORT: String(30000 + Math.floor(Math.random() * 10000)),
  };
  await run("bash", [join(CI_DIR, "swift.sh"), "start", join(dir, "swift")], { env });
  try {
    const endpoint = `http://127.0.0.1:${port}`;
    const s3 = new S3Client({
      endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "test:tester", secretAccessKey: "testing" },
    });
    await s3.send(new CreateBucketCommand({ Bucket: "bench" }));
    s3.destroy();
    const targets: { name: string; store: (r: number) => StoreConfig }[] = [
      { name: "filesystem", store: (r) => ({ type: "filesystem", path: join(dir, `fs-${r}`) }) },
      {
        name: "swift (native)",
        store: (r) => ({
          type: "swift",
          authUrl: `${endpoint}/auth/v1.0`,
          user: "test:tester",
          key: "testing",
          container: "bench",
          prefix: `n${r}/`,
        }),
      },
      {
        name: "s3 on swift (s3api)",
        store: (r) => ({
          type: "s3",
          endpoint,
          region: "us-east-1",
          bucket: "bench",
          forcePathStyle: true,
          accessKeyId: "test:tester",
          secretAccessKey: "testing",
          prefix: `s${r}/`,
        }),
      },
    ];
    const rows = new Map(targets.map((t) => [t.name, [] as Awaited<ReturnType<typeof measure>>[]]));
    for (let r = 0; r < Number(opt.rounds); r++) {
      for (const t of targets) {
        const m = await measure(t.store(r), join(dir, `scratch-${r}`), size);
        rows.get(t.name)?.push(m);
        log(`round ${r + 1} ${t.name}: ingest ${m.ingestMBps} MB/s, download ${m.downloadMBps} MB/s`);
      }
    }
    const summary = targets.map((t) => {
      const ms = rows.get(t.name) ?? [];
      return {
        target: t.name,
        ingestMBps: median(ms.map((m) => m.ingestMBps)),
        downloadMBps: median(ms.map((m) => m.downloadMBps)),
        requestsPerGiB: Math.round(median(ms.map((m) => m.requestsPerGiB)) * 10) / 10,
      };
    });
    const fs = summary[0] as (typeof summary)[number];
    process.stdout.write(
      `${JSON.stringify({
        file: opt.file,
        bytes: size,
        rounds: Number(opt.rounds),
        results: summary.map((s) => ({
          ...s,
          ingestOverFs: ratio(s.ingestMBps, fs.ingestMBps),
          downloadOverFs: ratio(s.downloadMBps, fs.downloadMBps),
        })),
      })}\n`,
    );
  } finally {
    await run("bash", [join(CI_DIR, "swift.sh"), "stop", join(dir, "swift")], { env }).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
