/**
 * The evaluation report: the JSON every figure lives in, and one self-contained HTML page drawn
 * from it alone (inline SVG, no scripts, no fetches): stored bytes per configuration and peer,
 * ingest speed against stored bytes, the chunk-size histogram and the sharing heatmap, then the
 * same numbers as tables. The JSON rides inside the page too.
 */
import { bars, heatmap, histogram, scatter } from "./charts.js";
import { type ByteUnit, esc, fmtBytes, fmtCount, fmtIn, fmtMiB, fmtRate, unitFor } from "./format.js";
import type { PeerResult } from "./peers.js";
import type { Analysis, ConfigResult } from "./run-config.js";

export interface Report {
  tool: { name: "tessera"; version: string };
  command: string;
  createdAt: string;
  machine: {
    platform: string;
    arch: string;
    cpus: number;
    cpuModel: string;
    memoryBytes: number;
    node: string;
  };
  corpus: { dir: string; images: { name: string; bytes: number }[]; totalBytes: number };
  configs: ConfigResult[];
  peers: PeerResult[];
  /** Figures of the corpus itself, from the chunking of configuration `config`. */
  analysis: (Analysis & { config: string }) | null;
}

/** Text, or a figure: `value` is the JSON's number (none where there is no figure to show). */
type Cell = string | { text: string; value?: number; title?: string };

/** A number cell: shown as `text`, the figure itself in data-value (and the exact bytes on hover). */
const num = (value: number, text: string, title?: string): Cell => ({ text, value, title });
const bytesCell = (b: number, unit: ByteUnit): Cell => num(b, fmtIn(b, unit), `${fmtCount(b)} bytes`);
const NONE: Cell = { text: "—" };
const ratio = (x: number) => `${x.toFixed(x < 10 ? 2 : 1)}×`;

function table(head: string[], rows: Cell[][]): string {
  // A column of figures is right-aligned, its heading too, so that digits line up under it.
  const figures = head.map((_, i) => rows.some((r) => typeof r[i] === "object"));
  // Headings may carry soft hyphens (U+00AD): long words break there, not past the column.
  const th = head.map((x, i) => `<th${figures[i] ? ' class="num"' : ""}>${esc(x)}</th>`).join("");
  const td = (c: Cell) =>
    typeof c === "string"
      ? `<td>${esc(c)}</td>`
      : `<td class="num"${c.value === undefined ? "" : ` data-value="${c.value}"`}${c.title ? ` title="${esc(c.title)}"` : ""}>${esc(c.text)}</td>`;
  const trs = rows.map((r) => `<tr>${r.map(td).join("")}</tr>`).join("");
  return `<table><thead><tr>${th}</tr></thead><tbody>${trs}</tbody></table>`;
}

/** 16/64/256 KiB when the sizes are whole KiB (the usual case), else each in its own unit. */
function chunkerText(c: { min: number; avg: number; max: number }): string {
  const all = [c.min, c.avg, c.max];
  return all.every((b) => b % 1024 === 0)
    ? `${all.map((b) => fmtCount(b / 1024)).join("/")}\u00a0KiB`
    : all.map(fmtBytes).join(" / ");
}

/** One chart and the sentence that says what it shows. */
const figure = (chart: string, caption: string) =>
  `<figure>${chart}<figcaption>${caption}</figcaption></figure>`;

const CSS = [
  "body{font:15px/1.45 system-ui,sans-serif;margin:24px auto;padding:0 16px;color:#222;max-width:1040px}",
  "table{border-collapse:collapse;margin:8px 0 28px;font-size:13px}",
  "td,th{border:1px solid #ccc;padding:3px 5px;text-align:left;vertical-align:top}",
  "th{background:#f4f4f4;font-weight:600}",
  "td.num,th.num{text-align:right}",
  "td:first-child{white-space:nowrap}",
  "td.num{font-variant-numeric:tabular-nums;white-space:nowrap}",
  ".scroll{overflow-x:auto}",
  "figure{margin:16px 0 32px;overflow-x:auto}",
  "figure svg{display:block;width:100%;height:auto;min-width:560px;font-family:system-ui,sans-serif}",
  "figcaption{color:#444;font-size:14px;margin-top:6px;max-width:60em}",
].join("");

/** Tools print their name around the version (zstd's "*** Zstandard CLI ... ***"). */
const versionText = (v: string) => v.replace(/^\*+\s*|\s*\*+$/g, "");

export function renderReport(r: Report): string {
  const measured = r.peers.filter((p) => p.measured);
  const stored = bars("chart-stored", "Bytes stored, by configuration and peer tool", [
    ...r.configs.map((c) => ({ label: c.name, value: c.storedBytes, kind: "config" as const })),
    ...measured.map((p) => ({ label: p.name, value: p.storedBytes as number, kind: "peer" as const })),
  ]);
  const tradeoff = scatter("chart-tradeoff", "Ingest speed against bytes stored", [
    ...r.configs.map((c) => ({ label: c.name, x: c.ingestMBps, y: c.storedBytes, kind: "config" as const })),
    ...measured.map((p) => ({
      label: p.name,
      x: p.ingestMBps as number,
      y: p.storedBytes as number,
      kind: "peer" as const,
    })),
  ]);
  const a = r.analysis;
  const figures = [
    figure(
      stored,
      "What each configuration, and each peer tool installed here, kept on its store for the whole corpus: the cost of these images in storage. Shorter bars are better.",
    ),
    figure(
      tradeoff,
      "Each point is one configuration or peer tool: how fast it took the corpus in (further right is faster) against what it stored (lower is smaller). The best trade-offs lie towards the bottom right.",
    ),
  ];
  if (a) {
    figures.push(
      figure(
        histogram("chart-chunk-sizes", `Chunk sizes (${a.config})`, a.chunkSizes),
        `How many chunks of each size configuration ${esc(a.config)} cut from the corpus, from its chunker's minimum to its maximum. The first bar also holds each image's shorter last chunk; the last, the chunks cut at the maximum (long runs of zeros are cut there).`,
      ),
      figure(
        heatmap("chart-sharing", `Sharing between images (${a.config})`, a.sharing),
        "Each cell: the percentage of the column image's bytes whose chunks the row image already has (100: all of them). A dark row is an image that holds much of the others; a dark column, an image mostly made of the others.",
      ),
    );
  }
  const storedUnit = unitFor([
    ...r.configs.map((c) => c.packBytes),
    ...measured.map((p) => p.storedBytes as number),
  ]);
  const configRows: Cell[][] = r.configs.map((c) => [
    c.name,
    chunkerText(c.config.chunker),
    c.config.compression,
    c.config.store.type,
    bytesCell(c.storedBytes, storedUnit),
    bytesCell(c.packBytes, storedUnit),
    num(c.dedupRatio, ratio(c.dedupRatio)),
    num(c.ingestMBps, fmtRate(c.ingestMBps)),
    num(c.downloadMBps, fmtRate(c.downloadMBps)),
    num(c.chunks, fmtCount(c.chunks)),
    num(c.packs, fmtCount(c.packs)),
    num(c.requestsPerGiB, fmtRate(c.requestsPerGiB)),
    num(c.peakRssBytes, fmtMiB(c.peakRssBytes), `${fmtCount(c.peakRssBytes)} bytes`),
  ]);
  const peerRows: Cell[][] = r.peers.map((p) =>
    p.measured
      ? [
          p.name,
          versionText(p.version ?? ""),
          bytesCell(p.storedBytes as number, storedUnit),
          num(p.dedupRatio as number, ratio(p.dedupRatio as number)),
          num(p.ingestMBps as number, fmtRate(p.ingestMBps as number)),
          p.command ?? "",
        ]
      : [p.name, versionText(p.version ?? ""), NONE, NONE, NONE, `not measured: ${p.reason ?? ""}`],
  );
  const m = r.machine;
  const data = JSON.stringify(r).replace(/</g, "\\u003c");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Tessera storage evaluation</title>
<style>${CSS}</style>
</head><body>
<h1>Tessera storage evaluation</h1>
<p>${fmtCount(r.corpus.images.length)} images, ${esc(fmtBytes(r.corpus.totalBytes))} in <code>${esc(r.corpus.dir)}</code>, measured ${esc(r.createdAt.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC"))} on ${esc(m.cpuModel)} ×${m.cpus} with ${esc(fmtBytes(m.memoryBytes))} of memory (${esc(m.platform)}, ${esc(m.arch)}), Node ${esc(m.node)}, tessera ${esc(r.tool.version)}.</p>
<p>Command: <code>${esc(r.command)}</code></p>
<p>Sizes are in binary units (1 MiB = 1,048,576 bytes; hover a size for its bytes); speeds in decimal megabytes per second (1 MB = 1,000,000 bytes).</p>
${figures.join("\n")}
<h2>Configurations</h2>
<div class="scroll">${table(["config\u00aduration", "chunker min/avg/max", "compres\u00adsion", "store", "stored", "pack objects", "dedup ratio", "ingest MB/s", "download MB/s", "chunks", "packs", "requests per GiB", "peak RSS"], configRows)}</div>
<h2>Peers</h2>
<div class="scroll">${table(["peer", "version", "stored", "dedup ratio", "ingest MB/s", "command or reason"], peerRows)}</div>
<h2>Images</h2>
${table(
  ["image", "size"],
  r.corpus.images.map((i) => [i.name, num(i.bytes, fmtBytes(i.bytes), `${fmtCount(i.bytes)} bytes`)]),
)}
<script type="application/json" id="report-data">${data}</script>
</body></html>
`;
}
