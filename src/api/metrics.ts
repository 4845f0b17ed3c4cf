/**
 * Prometheus metrics (GET /metrics), with prom-client: requests by route and status and their
 * durations, bytes uploaded and downloaded and the time spent on them (rate() of one over the
 * other is the throughput), what each store holds and its dedup ratio, and garbage collection
 * runs and findings, background scrubs and what they found. Store figures are scans (engine stats): taken at most once a minute.
 *
 * In a cluster (several workers) each process keeps its own registry and GET /metrics answers
 * for the node: counters are summed over the processes; figures of the whole node (the stores,
 * the last collection, progress) are kept by the primary only, and say how they combine
 * (`aggregator`) so that a process reporting them too could not multiply them.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { FsckReport } from "../engine/fsck.js";
import type { GcReport } from "../engine/gc.js";
import type { StatsReport } from "../engine/stats.js";
import type { ImageService } from "../images/images.js";

export interface RequestSample {
  method: string;
  route: string;
  status: number;
  seconds: number;
}

export interface Metrics {
  readonly registry: Registry;
  /** What GET /metrics answers: this registry, or in a cluster worker the node's. */
  exposition(): Promise<string>;
  request(r: RequestSample): void;
  upload(bytes: number, seconds: number): void;
  download(bytes: number, seconds: number): void;
  gc(report: GcReport): void;
  scrub(report: FsckReport): void;
  /** Progress of a collection or scrub under way (their onProgress). */
  gcProgress(step: string, done: number, total: number): void;
  scrubProgress(step: string, done: number, total: number): void;
}

const STATS_MAX_AGE_MS = 60_000;

export interface MetricsOptions {
  /**
   * Keep the node's store figures (default true). False in a cluster worker: the primary takes
   * them, and N workers would each scan the catalog for the same numbers.
   */
  storeFigures?: boolean;
  /** What GET /metrics answers instead of this registry (a worker asks its primary for the node's). */
  exposition?: () => Promise<string>;
}

export function createMetrics(images: ImageService, options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "tessera_" });
  const requests = new Counter({
    name: "tessera_http_requests_total",
    help: "HTTP requests answered, by method, route and status",
    labelNames: ["method", "route", "status"],
    registers: [registry],
  });
  const durations = new Histogram({
    name: "tessera_http_request_duration_seconds",
    help: "Time from request to the end of the response",
    labelNames: ["method", "route"],
    buckets: [0.005, 0.02, 0.1, 0.5, 2, 10, 60, 300],
    registers: [registry],
  });
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name, help, labelNames, registers: [registry] });
  const uploadBytes = counter("tessera_upload_bytes_total", "Image bytes uploaded and committed");
  const uploadSeconds = counter("tessera_upload_seconds_total", "Time spent on committed uploads");
  const downloadBytes = counter("tessera_download_bytes_total", "Image bytes sent to clients");
  const downloadSeconds = counter("tessera_download_seconds_total", "Time spent sending image data");
  const gcRuns = counter("tessera_gc_runs_total", "Garbage collections");
  const gcChunks = counter("tessera_gc_chunks_dropped_total", "Unreferenced chunks dropped from the index", [
    "store",
  ]);
  const gcBytes = counter("tessera_gc_deleted_bytes_total", "Bytes of packs and manifests deleted", [
    "store",
  ]);
  new Counter({
    name: "tessera_image_record_write_failures_total",
    help: "Image record objects this process could not write to a store (tessera image-records --write repairs)",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(images.recordWriteFailures);
    },
  });
  const scrubRuns = counter("tessera_scrub_runs_total", "Background scrubs finished");
  const scrubBytes = counter("tessera_scrub_checked_bytes_total", "Stored bytes read and checked by scrubs", [
    "store",
  ]);
  const scrubBad = counter("tessera_scrub_bad_chunks_total", "Bad or missing chunks scrubs found", ["store"]);
  const progress = (name: string, help: string) =>
    new Gauge({ name, help, labelNames: ["step"], registers: [registry], aggregator: "max" });
  const gcProgress = progress(
    "tessera_gc_progress_ratio",
    "How far each step of the collection under way is",
  );
  const scrubProgress = progress("tessera_scrub_progress_ratio", "How far the scrub under way is, per store");
  const gcLast = new Gauge({
    name: "tessera_gc_last_run_seconds",
    help: "Duration of the last garbage collection",
    registers: [registry],
    aggregator: "max",
  });
  const gcWaiting = new Gauge({
    name: "tessera_gc_trash_waiting",
    help: "Objects in the trash waiting out the grace period, as of the last collection",
    labelNames: ["store"],
    registers: [registry],
    aggregator: "max",
  });

  // The report being taken is shared by every gauge that asks meanwhile; a failed one is not kept.
  let stats: { at: number; report: Promise<StatsReport> } | undefined;
  const current = (): Promise<StatsReport> => {
    if (!stats || Date.now() - stats.at > STATS_MAX_AGE_MS) {
      const taken = { at: Date.now(), report: images.engine.stats() };
      taken.report.catch(() => {
        if (stats === taken) stats = undefined;
      });
      stats = taken;
    }
    return stats.report;
  };
  const storeGauge = (name: string, help: string, pick: (s: StatsReport["stores"][number]) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ["store"],
      registers: options.storeFigures === false ? [] : [registry],
      aggregator: "first",
      async collect() {
        for (const s of (await current()).stores) this.set({ store: s.store }, pick(s));
      },
    });
  storeGauge("tessera_store_objects", "Distinct image data held", (s) => s.objects);
  storeGauge("tessera_store_logical_bytes", "Bytes the images hold, undeduplicated", (s) => s.logicalBytes);
  storeGauge("tessera_store_chunks", "Distinct chunks stored and referenced", (s) => s.chunks);
  storeGauge("tessera_store_stored_bytes", "Bytes of the referenced chunks as stored", (s) => s.storedBytes);
  storeGauge("tessera_store_pack_bytes", "Bytes of the packs", (s) => s.packBytes);
  storeGauge("tessera_store_dedup_ratio", "Logical bytes over stored bytes", (s) => s.dedupRatio);

  return {
    registry,
    exposition: options.exposition ?? (() => registry.metrics()),
    request: (r) => {
      requests.inc({ method: r.method, route: r.route, status: String(r.status) });
      durations.observe({ method: r.method, route: r.route }, r.seconds);
    },
    upload: (bytes, seconds) => {
      uploadBytes.inc(bytes);
      uploadSeconds.inc(seconds);
    },
    download: (bytes, seconds) => {
      downloadBytes.inc(bytes);
      downloadSeconds.inc(seconds);
    },
    gc: (report) => {
      gcRuns.inc();
      gcLast.set(report.seconds);
      for (const s of report.stores) {
        gcChunks.inc({ store: s.store }, s.chunksDropped);
        gcBytes.inc({ store: s.store }, s.bytesDeleted);
        gcWaiting.set({ store: s.store }, s.trashWaiting);
      }
      stats = undefined; // the stores changed
      gcProgress.reset();
    },
    gcProgress: (step, done, total) => gcProgress.set({ step }, total > 0 ? done / total : 1),
    scrubProgress: (step, done, total) => scrubProgress.set({ step }, total > 0 ? done / total : 1),
    scrub: (report) => {
      scrubProgress.reset();
      scrubRuns.inc();
      for (const s of report.stores) {
        scrubBytes.inc({ store: s.store }, s.bytesChecked);
        scrubBad.inc({ store: s.store }, s.badChunks + s.missingChunks);
      }
    },
  };
}
