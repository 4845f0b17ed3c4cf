/**
 * One storage configuration over a corpus, measured: every image ingested into a fresh store
 * (timed), read back whole (timed), then the store's own figures (bytes stored, chunks, packs,
 * backend requests). With `analyze`, also the corpus figures the configuration's chunking
 * gives: the chunk-size histogram and the sharing matrix (for each pair of images, the share of
 * B's bytes whose chunks A also has). Runs in its own process (evaluate.ts), so that its peak
 * memory is its own.
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { decodeManifest } from "../../catalog/manifest.js";
import { Engine } from "../../engine/engine.js";
import { readFilePieces } from "../../engine/file-source.js";
import { type BackendCounts, CountingBackend } from "../../store/counting-backend.js";
import { openBackend, type StoreConfig } from "../../store/open-store.js";
import type { EvalConfig } from "./configs.js";

export interface Histogram {
  /** Bin edges in bytes: bin i holds sizes in [edges[i], edges[i + 1]). */
  edges: number[];
  counts: number[];
}

export interface Analysis {
  chunkSizes: Histogram;
  /** Image names, and matrix[a][b]: the share of image b's bytes whose chunks image a also has. */
  sharing: { images: string[]; matrix: number[][] };
}

export interface ConfigResult {
  name: string;
  config: EvalConfig;
  images: number;
  logicalBytes: number;
  /** The chunks as stored (compressed or not), each once. */
  storedBytes: number;
  /** The pack objects' sizes: stored chunks plus pack indexes. */
  packBytes: number;
  dedupRatio: number;
  ingestSeconds: number;
  ingestMBps: number;
  downloadSeconds: number;
  downloadMBps: number;
  chunks: number;
  packs: number;
  requests: BackendCounts;
  /** Backend requests (PUT, GET, HEAD, DELETE, LIST) per GiB ingested and read back. */
  requestsPerGiB: number;
  peakRssBytes: number;
  analysis?: Analysis;
}

export type ProgressFn = (phase: "ingest" | "download", done: number, total: number) => void;

const GiB = 1024 ** 3;

function mbps(bytes: number, seconds: number): number {
  return Math.round((bytes / 1e6 / seconds) * 10) / 10;
}

export async function runConfig(
  cfg: EvalConfig,
  images: { path: string; name: string; size: number }[],
  scratch: string,
  options: { analyze?: boolean; onProgress?: ProgressFn; signal?: AbortSignal } = {},
): Promise<ConfigResult> {
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });
  const store: StoreConfig =
    cfg.store.type === "s3"
      ? { ...cfg.store, prefix: `${cfg.store.prefix ?? ""}tessera-evaluate/${cfg.name}-${Date.now()}/` }
      : { type: "filesystem", path: join(scratch, "objects") };
  let counter: CountingBackend | undefined;
  const backend = await openBackend(store, scratch, true, {
    innermost: (b) => {
      counter = new CountingBackend(b);
      return counter;
    },
  });
  const engine = await Engine.open(join(scratch, "catalog"), backend, {
    chunker: cfg.chunker,
    compression: cfg.compression,
    packSize: cfg.packSize,
  });
  try {
    const total = images.reduce((n, i) => n + i.size, 0);
    const ids: string[] = [];
    let done = 0;
    const t0 = performance.now();
    for (const img of images) {
      async function* counted(): AsyncGenerator<Buffer> {
        for await (const p of readFilePieces(img.path)) {
          done += p.length;
          options.onProgress?.("ingest", done, total);
          options.signal?.throwIfAborted();
          yield p;
        }
      }
      ids.push((await engine.ingest(counted())).manifestId);
    }
    const ingestSeconds = (performance.now() - t0) / 1000;
    done = 0;
    const t1 = performance.now();
    for (const id of ids) {
      for await (const p of engine.read(id)) {
        done += p.length;
        options.onProgress?.("download", done, total);
        options.signal?.throwIfAborted();
      }
    }
    const downloadSeconds = (performance.now() - t1) / 1000;
    const stats = (await engine.stats()).stores[0];
    if (!stats) throw new Error("the store has no figures");
    let packs = 0;
    for await (const _ of engine.store().index.scanPacks()) packs++;
    const requests = { ...(counter as CountingBackend).counts };
    const ops = requests.puts + requests.gets + requests.stats + requests.deletes + requests.lists;
    return {
      name: cfg.name,
      config: cfg,
      images: images.length,
      logicalBytes: total,
      storedBytes: stats.storedBytes,
      packBytes: stats.packBytes,
      dedupRatio: Math.round((total / Math.max(stats.storedBytes, 1)) * 1000) / 1000,
      ingestSeconds: Math.round(ingestSeconds * 1000) / 1000,
      ingestMBps: mbps(total, ingestSeconds),
      downloadSeconds: Math.round(downloadSeconds * 1000) / 1000,
      downloadMBps: mbps(total, downloadSeconds),
      chunks: stats.chunks,
      packs,
      requests,
      requestsPerGiB: Math.round((ops / ((2 * total) / GiB)) * 10) / 10,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      ...(options.analyze
        ? {
            analysis: await analyze(
              engine,
              ids,
              images.map((i) => i.name),
              cfg,
            ),
          }
        : {}),
    };
  } finally {
    await engine.close();
    if (cfg.store.type === "s3") {
      // Leave nothing behind in the operator's bucket.
      const s3 = await openBackend(store, scratch, false);
      for await (const o of s3.list("")) await s3.delete(o.name);
      await s3.close();
    }
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The chunk-size histogram and sharing matrix of the ingested images. */
async function analyze(engine: Engine, ids: string[], names: string[], cfg: EvalConfig): Promise<Analysis> {
  const { min, max } = cfg.chunker;
  const bins = 16;
  const width = (max - min) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) => Math.round(min + i * width));
  const counts = new Array<number>(bins).fill(0);
  // Per image: its chunks (hex id, or "zero:<len>" for all-zero chunks) in order, with lengths.
  const chunkLists: { keys: string[]; lengths: Uint32Array; size: number }[] = [];
  for (const id of ids) {
    const m = decodeManifest((await engine.catalog.getManifest(Buffer.from(id, "hex"))) as Buffer);
    const keys: string[] = [];
    for (let i = 0; i < m.count; i++) {
      const len = m.lengths[i] as number;
      // The last chunk of an image may be shorter than the minimum: it counts in the first bin.
      const bin = Math.min(bins - 1, Math.max(0, Math.floor((len - min) / width)));
      counts[bin] = (counts[bin] as number) + 1;
      const at = m.idAt[i] as number;
      keys.push(at < 0 ? `zero:${len}` : m.bytes.subarray(at, at + 32).toString("hex"));
    }
    chunkLists.push({ keys, lengths: m.lengths, size: m.size });
  }
  const sets = chunkLists.map((c) => new Set(c.keys));
  const matrix = chunkLists.map((_, a) =>
    chunkLists.map((b) => {
      if (b.size === 0) return 1;
      let present = 0;
      for (let i = 0; i < b.keys.length; i++) {
        if (sets[a]?.has(b.keys[i] as string)) present += b.lengths[i] as number;
      }
      return Math.round((present / b.size) * 10000) / 10000;
    }),
  );
  return { chunkSizes: { edges, counts }, sharing: { images: names, matrix } };
}
