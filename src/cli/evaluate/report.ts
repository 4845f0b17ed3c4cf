/**
 * The evaluation report: the JSON every figure lives in, and one self-contained HTML page drawn
 * from it alone (inline SVG, no scripts, no fetches): stored bytes per configuration and peer,
 * ingest speed against stored bytes, the chunk-size histogram and the sharing heatmap, then the
 * same numbers as tables. The JSON rides inside the page too.
 */
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

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const MB = 1e6;
const fmtMB = (b: number) => `${(b / MB).toFixed(1)} MB`;

const W = 720;
const PALETTE = { config: "#2b6cb0", peer: "#c05621", text: "#222" };

/** Horizontal bars: one per row, value as text at the bar's end. */
function bars(
  id: string,
  title: string,
  rows: { label: string; value: number; kind: "config" | "peer" }[],
): string {
  const rowH = 26;
  const left = 150;
  const h = rows.length * rowH + 40;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const body = rows
    .map((r, i) => {
      const y = 30 + i * rowH;
      const w = ((W - left - 120) * r.value) / max;
      return (
        `<text class="label" x="${left - 8}" y="${y + 16}" text-anchor="end">${esc(r.label)}</text>` +
        `<rect class="bar ${r.kind}" data-label="${esc(r.label)}" data-value="${r.value}" x="${left}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${PALETTE[r.kind]}"><title>${esc(r.label)}: ${fmtMB(r.value)}</title></rect>` +
        `<text class="value" x="${(left + w + 6).toFixed(1)}" y="${y + 16}">${fmtMB(r.value)}</text>`
      );
    })
    .join("");
  return `<svg id="${id}" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" role="img" aria-label="${esc(title)}"><text class="title" x="4" y="16" font-weight="bold">${esc(title)}</text>${body}</svg>`;
}

/** Points of (ingest MB/s, stored MB). */
function scatter(
  id: string,
  title: string,
  pts: { label: string; x: number; y: number; kind: "config" | "peer" }[],
): string {
  const h = 360;
  const m = { l: 70, r: 20, t: 30, b: 50 };
  const maxX = Math.max(1, ...pts.map((p) => p.x)) * 1.1;
  const maxMB = Math.max(1, ...pts.map((p) => p.y / MB)) * 1.1;
  const sx = (x: number) => m.l + ((W - m.l - m.r) * x) / maxX;
  const sy = (mb: number) => h - m.b - ((h - m.t - m.b) * mb) / maxMB;
  const axes =
    `<line x1="${m.l}" y1="${h - m.b}" x2="${W - m.r}" y2="${h - m.b}" stroke="${PALETTE.text}"/>` +
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${h - m.b}" stroke="${PALETTE.text}"/>` +
    `<text class="axis" x="${(W + m.l) / 2}" y="${h - 12}" text-anchor="middle">ingest MB/s</text>` +
    `<text class="axis" x="16" y="${(h - m.b + m.t) / 2}" transform="rotate(-90 16 ${(h - m.b + m.t) / 2})" text-anchor="middle">stored MB</text>`;
  const ticks = [0.25, 0.5, 0.75, 1]
    .map((f) => {
      const xv = (maxX / 1.1) * f;
      const yv = (maxMB / 1.1) * f;
      return (
        `<text class="tick" x="${sx(xv).toFixed(1)}" y="${h - m.b + 16}" text-anchor="middle" font-size="10">${xv.toFixed(0)}</text>` +
        `<text class="tick" x="${m.l - 6}" y="${sy(yv).toFixed(1)}" text-anchor="end" font-size="10">${yv.toFixed(0)}</text>`
      );
    })
    .join("");
  const dots = pts
    .map((p) => {
      const cx = sx(p.x).toFixed(1);
      const cy = sy(p.y / MB).toFixed(1);
      return (
        `<circle class="point ${p.kind}" data-label="${esc(p.label)}" cx="${cx}" cy="${cy}" r="5" fill="${PALETTE[p.kind]}"><title>${esc(p.label)}: ${p.x} MB/s, ${fmtMB(p.y)}</title></circle>` +
        `<text class="label" x="${(Number(cx) + 7).toFixed(1)}" y="${(Number(cy) - 6).toFixed(1)}" font-size="11">${esc(p.label)}</text>`
      );
    })
    .join("");
  return `<svg id="${id}" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" role="img" aria-label="${esc(title)}"><text class="title" x="4" y="16" font-weight="bold">${esc(title)}</text>${axes}${ticks}${dots}</svg>`;
}

function histogram(id: string, title: string, hist: Analysis["chunkSizes"]): string {
  const h = 260;
  const m = { l: 50, r: 10, t: 30, b: 50 };
  const n = hist.counts.length;
  const bw = (W - m.l - m.r) / n;
  const max = Math.max(1, ...hist.counts);
  const body = hist.counts
    .map((c, i) => {
      const bh = ((h - m.t - m.b) * c) / max;
      const x = m.l + i * bw;
      const lo = (hist.edges[i] as number) / 1024;
      const hi = (hist.edges[i + 1] as number) / 1024;
      return (
        `<rect class="bin" data-count="${c}" x="${(x + 1).toFixed(1)}" y="${(h - m.b - bh).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${bh.toFixed(1)}" fill="${PALETTE.config}"><title>${lo.toFixed(0)}–${hi.toFixed(0)} KiB: ${c} chunks</title></rect>` +
        (i % 2 === 0
          ? `<text class="tick" x="${(x + bw / 2).toFixed(1)}" y="${h - m.b + 14}" text-anchor="middle" font-size="10">${lo.toFixed(0)}</text>`
          : "")
      );
    })
    .join("");
  return `<svg id="${id}" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" role="img" aria-label="${esc(title)}"><text class="title" x="4" y="16" font-weight="bold">${esc(title)}</text>${body}<text class="axis" x="${(W + m.l) / 2}" y="${h - 12}" text-anchor="middle">chunk size, KiB</text></svg>`;
}

function heatmap(id: string, title: string, s: Analysis["sharing"]): string {
  const n = s.images.length;
  const left = 160;
  const top = 90;
  const cell = Math.max(24, Math.min(60, Math.floor((W - left - 10) / Math.max(n, 1))));
  const h = top + n * cell + 10;
  const cells = s.matrix
    .map((row, a) =>
      row
        .map((v, b) => {
          const shade = Math.round(255 - v * 200);
          return (
            `<rect class="cell" data-a="${esc(s.images[a] as string)}" data-b="${esc(s.images[b] as string)}" data-value="${v}" x="${left + b * cell}" y="${top + a * cell}" width="${cell}" height="${cell}" fill="rgb(${shade},${shade},255)" stroke="#fff"><title>${esc(s.images[b] as string)} in ${esc(s.images[a] as string)}: ${(v * 100).toFixed(1)} %</title></rect>` +
            `<text class="value" x="${left + b * cell + cell / 2}" y="${top + a * cell + cell / 2 + 4}" text-anchor="middle" font-size="10">${Math.round(v * 100)}</text>`
          );
        })
        .join(""),
    )
    .join("");
  const names = s.images
    .map(
      (name, i) =>
        `<text class="row-label" x="${left - 6}" y="${top + i * cell + cell / 2 + 4}" text-anchor="end" font-size="11">${esc(name)}</text>` +
        `<text class="col-label" x="${left + i * cell + cell / 2}" y="${top - 6}" transform="rotate(-45 ${left + i * cell + cell / 2} ${top - 6})" font-size="11">${esc(name)}</text>`,
    )
    .join("");
  return `<svg id="${id}" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" role="img" aria-label="${esc(title)}"><text class="title" x="4" y="16" font-weight="bold">${esc(title)}</text>${names}${cells}</svg>`;
}

function table(head: string[], rows: (string | number)[][]): string {
  const th = head.map((x) => `<th>${esc(x)}</th>`).join("");
  const trs = rows.map((r) => `<tr>${r.map((x) => `<td>${esc(String(x))}</td>`).join("")}</tr>`).join("");
  return `<table><thead><tr>${th}</tr></thead><tbody>${trs}</tbody></table>`;
}

export function renderReport(r: Report): string {
  const measured = r.peers.filter((p) => p.measured);
  const stored = bars("chart-stored", "Bytes stored, by configuration and peer (less is better)", [
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
  const hist = a ? histogram("chart-chunk-sizes", `Chunk sizes (${a.config})`, a.chunkSizes) : "";
  const heat = a
    ? heatmap(
        "chart-sharing",
        `Sharing: % of the column image's bytes already in the row image (${a.config})`,
        a.sharing,
      )
    : "";
  const configRows = r.configs.map((c) => [
    c.name,
    `${c.config.chunker.min}/${c.config.chunker.avg}/${c.config.chunker.max}`,
    c.config.compression,
    c.config.store.type,
    c.storedBytes,
    c.packBytes,
    c.dedupRatio,
    c.ingestMBps,
    c.downloadMBps,
    c.chunks,
    c.packs,
    c.requestsPerGiB,
    c.peakRssBytes,
  ]);
  const peerRows = r.peers.map((p) =>
    p.measured
      ? [
          p.name,
          p.version ?? "",
          p.storedBytes ?? "",
          p.dedupRatio ?? "",
          p.ingestMBps ?? "",
          p.command ?? "",
        ]
      : [p.name, p.version ?? "", "not measured", "", "", p.reason ?? ""],
  );
  const data = JSON.stringify(r).replace(/</g, "\\u003c");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tessera storage evaluation</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}table{border-collapse:collapse;margin:8px 0 24px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}svg{display:block;margin:12px 0 24px}</style>
</head><body>
<h1>Tessera storage evaluation</h1>
<p>${esc(r.corpus.images.length.toString())} images, ${esc(fmtMB(r.corpus.totalBytes))} in <code>${esc(r.corpus.dir)}</code>; ${esc(r.createdAt)}; ${esc(r.machine.cpuModel)} ×${r.machine.cpus}, ${esc(fmtMB(r.machine.memoryBytes))} memory, Node ${esc(r.machine.node)}, tessera ${esc(r.tool.version)}.</p>
<p>Command: <code>${esc(r.command)}</code></p>
${stored}
${tradeoff}
${hist}
${heat}
<h2>Configurations</h2>
${table(["configuration", "chunker min/avg/max", "compression", "store", "stored bytes", "pack bytes", "dedup ratio", "ingest MB/s", "download MB/s", "chunks", "packs", "requests per GiB", "peak RSS bytes"], configRows)}
<h2>Peers</h2>
${table(["peer", "version", "stored bytes", "dedup ratio", "ingest MB/s", "command or reason"], peerRows)}
<h2>Images</h2>
${table(
  ["image", "bytes"],
  r.corpus.images.map((i) => [i.name, i.bytes]),
)}
<script type="application/json" id="report-data">${data}</script>
</body></html>
`;
}
