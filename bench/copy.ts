/**
 * `npm run bench:copy`: copying a derived image to a second store that already holds its base.
 * Glance's copy-image moves every byte of the image; Tessera's copy moves the chunks the target
 * lacks. For each pair (base, derived) of the corpus, in a fresh data directory: the base is
 * ingested into the first store ("local", filesystem) and copied to the second, the derived
 * image is ingested into the first, then copied to the second and measured.
 *
 * "Bytes that differ", the reference, is measured independently of chunking: the derived
 * image's non-zero 4 KiB blocks (the filesystem's block size) whose content appears nowhere
 * in the base. A copy can hardly move less; the ratio says what content-defined chunks cost
 * over that.
 *
 *   --pairs a:b,...   base:derived files under --corpus (default base.raw:base-v2.raw,
 *                     base.raw:web.raw, base.raw:dev.raw)
 *   --corpus DIR      default ./corpus
 *   --avg-kb N        the chunker's average chunk size (min N/4, max 4N; default the store's 64)
 *   --dir DIR         scratch (default $TMPDIR/tessera-bench-copy)
 */
import { createHash } from "node:crypto";
import { mkdir, open as openFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chunkerForAverage } from "../src/chunker/params.js";
import { Engine, type StoreSetup } from "../src/engine/engine.js";
import { readFilePieces } from "../src/engine/file-source.js";
import { ZSTD_LEVEL } from "../src/store/chunk-codec.js";
import { CountingBackend } from "../src/store/counting-backend.js";
import { openBackend, type StoreConfig, storeEngineDefaults } from "../src/store/open-store.js";
import { log, mbps, ratio, timed } from "./common.js";
import { startS3rver, type Target } from "./s3-servers.js";

const { values: opt } = parseArgs({
  options: {
    pairs: { type: "string", default: "base.raw:base-v2.raw,base.raw:web.raw,base.raw:dev.raw" },
    corpus: { type: "string", default: "corpus" },
    "avg-kb": { type: "string" },
    dir: { type: "string", default: join(tmpdir(), "tessera-bench-copy") },
  },
});
const { Encoder } = createRequire(import.meta.url)("@toondepauw/node-zstd") as {
  Encoder: new (level: number) => { encodeSync(b: Buffer): Buffer };
};
const MB = 1e6;
const BLOCK = 4096;

/** Hex digests of a file's non-zero 4 KiB blocks, with the blocks. */
async function* blocks(path: string): AsyncGenerator<{ digest: string; block: Buffer }> {
  const fh = await openFile(path, "r");
  const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
  const zero = Buffer.alloc(BLOCK);
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length);
      if (bytesRead === 0) return;
      for (let at = 0; at < bytesRead; at += BLOCK) {
        const block = buf.subarray(at, Math.min(at + BLOCK, bytesRead));
        if (block.length === BLOCK && block.equals(zero)) continue;
        yield { digest: createHash("sha1").update(block).digest("base64"), block };
      }
    }
  } finally {
    await fh.close();
  }
}

/**
 * `derived`'s non-zero 4 KiB blocks whose content is nowhere in `base`: their bytes, and
 * their size compressed with zstd at the stores' level in runs of 16 (64 KiB, a chunk's
 * average), the fair reference for what a compressing store is sent.
 */
async function differing(base: string, derived: string): Promise<{ plain: number; zstd: number }> {
  const known = new Set<string>();
  for await (const b of blocks(base)) known.add(b.digest);
  const encoder = new Encoder(ZSTD_LEVEL);
  let plain = 0;
  let zstd = 0;
  let run: Buffer[] = [];
  const flush = () => {
    if (run.length === 0) return;
    zstd += Math.min(encoder.encodeSync(Buffer.concat(run)).length, run.length * BLOCK);
    run = [];
  };
  for await (const b of blocks(derived)) {
    if (known.has(b.digest)) continue;
    plain += BLOCK;
    run.push(Buffer.from(b.block));
    if (run.length === 16) flush();
  }
  flush();
  return { plain, zstd };
}

async function openStores(dir: string, target: Target) {
  const counted: Record<string, CountingBackend> = {};
  const setups: Record<string, StoreSetup> = {};
  const configs: Record<string, StoreConfig> = {
    local: { type: "filesystem", path: join(dir, "local") },
    remote:
      target.store.type === "filesystem"
        ? { ...target.store, path: join(dir, "remote") }
        : { ...target.store, prefix: `${Date.now()}/` },
  };
  for (const [name, cfg] of Object.entries(configs)) {
    const backend = await openBackend(cfg, dir, true, {
      name,
      innermost: (b) => {
        counted[name] = new CountingBackend(b);
        return counted[name];
      },
    });
    setups[name] = { backend, config: cfg, ...storeEngineDefaults(cfg) };
  }
  const chunker = opt["avg-kb"] ? chunkerForAverage(Number(opt["avg-kb"]) * 1024) : undefined;
  const engine = await Engine.open(join(dir, "catalog"), setups, { defaultStore: "local", chunker });
  return { engine, counted };
}

async function measurePair(
  target: Target,
  basePath: string,
  derivedPath: string,
  diff: { plain: number; zstd: number },
) {
  const dir = join(opt.dir, "run");
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const { engine, counted } = await openStores(dir, target);
  try {
    const base = await engine.ingest(readFilePieces(basePath));
    const baseCopy = await engine.copy(base.manifestId, "remote");
    const ingest = await timed(() => engine.ingest(readFilePieces(derivedPath)));
    const derived = ingest.value;
    const remote = counted.remote as CountingBackend;
    const putsBefore = remote.counts.puts;
    const bytesPutBefore = remote.counts.bytesPut;
    const copy = await timed(() => engine.copy(derived.manifestId, "remote"));
    const written = remote.counts.bytesPut - bytesPutBefore;
    const row = {
      imageMB: Math.round(derived.size / MB),
      nonZeroMB: Math.round((derived.size - derived.zeroBytes) / MB),
      differingMB: Math.round((diff.plain / MB) * 10) / 10,
      differingZstdMB: Math.round((diff.zstd / MB) * 10) / 10,
      newAtIngestMB: Math.round((derived.bytesNew / MB) * 10) / 10,
      movedMB: Math.round((copy.value.bytesMoved / MB) * 10) / 10,
      writtenMB: Math.round((written / MB) * 10) / 10,
      puts: remote.counts.puts - putsBefore,
      seconds: Math.round(copy.s * 100) / 100,
      chunks: derived.chunkCount,
      ingestMBps: mbps(derived.size, ingest.s),
      movedOverDiffering: ratio(copy.value.bytesMoved, diff.plain),
      // What the target was sent, over the differing bytes in the same form (compressed or not).
      writtenOverDiffering: ratio(written, target.store.type === "s3" ? diff.zstd : diff.plain),
      movedOverImage: ratio(copy.value.bytesMoved, derived.size),
      baseMovedMB: Math.round(baseCopy.bytesMoved / MB),
    };
    log(
      `${target.name.padEnd(11)} ${derivedPath.split("/").pop()} (${row.imageMB} MB, ${row.nonZeroMB} MB non-zero): ` +
        `differs by ${row.differingMB} MB, copy moved ${row.movedMB} MB (×${row.movedOverDiffering} of that, ` +
        `×${row.movedOverImage} of the image), wrote ${row.writtenMB} MB in ${row.puts} PUTs ` +
        `(×${row.writtenOverDiffering} of the differing bytes as the store keeps them), ${row.seconds} s; ` +
        `ingest ${row.ingestMBps} MB/s, ${row.chunks} chunks`,
    );
    return row;
  } finally {
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  await mkdir(opt.dir, { recursive: true });
  const pairs = opt.pairs
    .split(",")
    .map((p) => p.split(":").map((f) => join(opt.corpus, f)) as [string, string]);
  const diffs = new Map<string, { plain: number; zstd: number }>();
  for (const [b, d] of pairs) {
    const t = await timed(() => differing(b, d));
    diffs.set(`${b}:${d}`, t.value);
    log(
      `${d}: ${(t.value.plain / MB).toFixed(1)} MB of 4 KiB blocks not in ${b}, ` +
        `${(t.value.zstd / MB).toFixed(1)} MB with zstd (${t.s.toFixed(1)} s)`,
    );
  }
  const targets: Target[] = [{ name: "filesystem", store: { type: "filesystem" }, stop: async () => {} }];
  try {
    targets.push(await startS3rver(opt.dir));
  } catch (e) {
    log(`s3rver: not measured (${(e as Error).message})`);
  }
  const results: Record<string, unknown> = {};
  for (const t of targets) {
    try {
      for (const [b, d] of pairs) {
        results[`${t.name} ${d}`] = await measurePair(
          t,
          b,
          d,
          diffs.get(`${b}:${d}`) as { plain: number; zstd: number },
        );
      }
    } finally {
      await t.stop();
    }
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
