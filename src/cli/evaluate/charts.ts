/**
 * The report's charts as inline SVG, each drawn in its own coordinates (viewBox) so that the page
 * scales it to the width it has. Scales start at round values with round steps; names that would
 * collide are moved apart (labels.ts); colours are explained by a legend in the chart.
 */
import { esc, fmtBytes, fmtCount, fmtIn, fmtRate, niceTicks, unitFor } from "./format.js";
import { leader, lineHeight, placeLabels, textWidth } from "./labels.js";
import type { Analysis } from "./run-config.js";

export const W = 800;
const PALETTE = { config: "#2b6cb0", peer: "#c05621", text: "#222", muted: "#555", grid: "#e4e4e4" };
const KINDS = { config: "Tessera configuration", peer: "peer tool" } as const;
type Kind = keyof typeof KINDS;

const FONT = { title: 15, label: 13, tick: 12, value: 12 };

function svg(id: string, title: string, w: number, h: number, body: string): string {
  return (
    `<svg id="${id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(title)}">` +
    `<text class="title" x="0" y="${FONT.title + 2}" font-size="${FONT.title}" font-weight="bold">${esc(title)}</text>${body}</svg>`
  );
}

/** A key to the colours of the kinds drawn, right-aligned at (right, y). */
function legend(kinds: Kind[], right: number, y: number): string {
  let x = right;
  let out = "";
  for (const k of [...kinds].reverse()) {
    x -= textWidth(KINDS[k], FONT.tick) + 22;
    out +=
      `<circle class="legend-key ${k}" cx="${x + 6}" cy="${y - 4}" r="5" fill="${PALETTE[k]}"/>` +
      `<text class="legend" x="${x + 15}" y="${y}" font-size="${FONT.tick}" fill="${PALETTE.muted}">${KINDS[k]}</text>`;
  }
  return out;
}

const kindsOf = (rows: { kind: Kind }[]) =>
  (["config", "peer"] as const).filter((k) => rows.some((r) => r.kind === k));

/** Horizontal bars, one per configuration or peer, each with its size written at its end. */
export function bars(
  id: string,
  title: string,
  rows: { label: string; value: number; kind: Kind }[],
): string {
  const rowH = 28;
  const top = 40;
  const left = Math.min(260, Math.max(80, ...rows.map((r) => textWidth(r.label, FONT.label) + 12)));
  const room = 90;
  const h = top + rows.length * rowH + 4;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const unit = unitFor(rows.map((r) => r.value));
  const body = rows
    .map((r, i) => {
      const y = top + i * rowH;
      const w = ((W - left - room) * r.value) / max;
      const mid = y + rowH / 2 + FONT.label * 0.35;
      return (
        `<text class="label" x="${left - 8}" y="${mid.toFixed(1)}" text-anchor="end" font-size="${FONT.label}">${esc(r.label)}</text>` +
        `<rect class="bar ${r.kind}" data-label="${esc(r.label)}" data-value="${r.value}" x="${left}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${PALETTE[r.kind]}"><title>${esc(r.label)}: ${fmtBytes(r.value)} (${fmtCount(r.value)} bytes)</title></rect>` +
        `<text class="value" x="${(left + w + 6).toFixed(1)}" y="${mid.toFixed(1)}" font-size="${FONT.value}">${fmtIn(r.value, unit)}</text>`
      );
    })
    .join("");
  return svg(id, title, W, h, `${legend(kindsOf(rows), W, top - 12)}${body}`);
}

interface Frame {
  w: number;
  h: number;
  m: { l: number; r: number; t: number; b: number };
}

/** Grid lines and tick labels at `ticks` along one axis of the plot area, and the axis's name. */
function axis(
  f: Frame,
  dir: "x" | "y",
  ticks: { values: number[]; labels: string[] },
  at: (v: number) => number,
  name: string,
): string {
  const { w, h, m } = f;
  const lines = ticks.values
    .map((v, i) => {
      const p = at(v).toFixed(1);
      const label = esc(ticks.labels[i] as string);
      return dir === "x"
        ? `<line class="grid" x1="${p}" y1="${m.t}" x2="${p}" y2="${h - m.b + 4}" stroke="${PALETTE.grid}"/>` +
            `<text class="tick x" x="${p}" y="${h - m.b + 18}" text-anchor="middle" font-size="${FONT.tick}" fill="${PALETTE.muted}">${label}</text>`
        : `<line class="grid" x1="${m.l - 4}" y1="${p}" x2="${w - m.r}" y2="${p}" stroke="${PALETTE.grid}"/>` +
            `<text class="tick y" x="${m.l - 8}" y="${(Number(p) + 4).toFixed(1)}" text-anchor="end" font-size="${FONT.tick}" fill="${PALETTE.muted}">${label}</text>`;
    })
    .join("");
  const title =
    dir === "x"
      ? `<text class="axis" x="${(m.l + w - m.r) / 2}" y="${h - 10}" text-anchor="middle" font-size="${FONT.label}">${esc(name)}</text>`
      : `<text class="axis" x="16" y="${(h - m.b + m.t) / 2}" transform="rotate(-90 16 ${(h - m.b + m.t) / 2})" text-anchor="middle" font-size="${FONT.label}">${esc(name)}</text>`;
  const line =
    dir === "x"
      ? `<line x1="${m.l}" y1="${h - m.b}" x2="${w - m.r}" y2="${h - m.b}" stroke="${PALETTE.text}"/>`
      : `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${h - m.b}" stroke="${PALETTE.text}"/>`;
  return lines + line + title;
}

/** Points of (ingest MB/s, stored bytes), each named beside it or, where crowded, by a leader line. */
export function scatter(
  id: string,
  title: string,
  pts: { label: string; x: number; y: number; kind: Kind }[],
): string {
  const f: Frame = { w: W, h: 440, m: { l: 72, r: 24, t: 44, b: 52 } };
  const { w, h, m } = f;
  // The unit of the bars and tables beside it, so that the same figure reads the same.
  const unit = unitFor(pts.map((p) => p.y));
  const xt = niceTicks(0, Math.max(0, ...pts.map((p) => p.x)), 6);
  const yt = niceTicks(0, Math.max(0, ...pts.map((p) => p.y / unit.size)), 6);
  const sx = (v: number) => m.l + ((w - m.l - m.r) * (v - xt.lo)) / (xt.hi - xt.lo);
  const sy = (v: number) => h - m.b - ((h - m.t - m.b) * (v - yt.lo)) / (yt.hi - yt.lo);
  const r = 6;
  const at = pts.map((p) => ({ x: sx(p.x), y: sy(p.y / unit.size) }));
  const size = FONT.label;
  const placed = placeLabels(
    at,
    pts.map((p) => ({ w: textWidth(p.label, size), h: lineHeight(size) })),
    { x: m.l + 2, y: m.t, w: w - m.l - m.r - 2, h: h - m.t - m.b - 2 },
    r,
  );
  const dots = pts
    .map((p, i) => {
      const { x, y } = at[i] as { x: number; y: number };
      return `<circle class="point ${p.kind}" data-label="${esc(p.label)}" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${r}" fill="${PALETTE[p.kind]}" stroke="#fff"><title>${esc(p.label)}: ${fmtRate(p.x)} MB/s, ${fmtBytes(p.y)}</title></circle>`;
    })
    .join("");
  const names = placed
    .map(({ box, leader: far }, i) => {
      const p = at[i] as { x: number; y: number };
      const [x1, y1, x2, y2] = leader(p, box, r).map((v) => v.toFixed(1));
      const line = far
        ? `<line class="leader" x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="#999"/>`
        : "";
      const label = (pts[i] as { label: string }).label;
      return `${line}<text class="label" x="${box.x.toFixed(1)}" y="${(box.y + size * 0.95).toFixed(1)}" font-size="${size}">${esc(label)}</text>`;
    })
    .join("");
  return svg(
    id,
    title,
    w,
    h,
    axis(f, "x", xt, sx, "ingest speed, MB/s (further right is faster)") +
      axis(f, "y", yt, sy, `stored, ${unit.name} (lower is smaller)`) +
      legend(kindsOf(pts), w - m.r, m.t - 16) +
      names +
      dots,
  );
}

/** Bins from the chunker's minimum to its maximum; a linear scale of chunk size in KiB. */
export function histogram(id: string, title: string, hist: Analysis["chunkSizes"]): string {
  const f: Frame = { w: W, h: 320, m: { l: 72, r: 16, t: 36, b: 52 } };
  const { w, h, m } = f;
  const n = hist.counts.length;
  const loK = (hist.edges[0] as number) / 1024;
  const hiK = (hist.edges[n] as number) / 1024;
  const xt = niceTicks(loK, hiK, 8, false);
  const yt = niceTicks(0, Math.max(1, ...hist.counts), 5);
  const sx = (k: number) => m.l + ((w - m.l - m.r) * (k - loK)) / (hiK - loK || 1);
  const sy = (c: number) => h - m.b - ((h - m.t - m.b) * c) / yt.hi;
  const body = hist.counts
    .map((c, i) => {
      const lo = (hist.edges[i] as number) / 1024;
      const hi = (hist.edges[i + 1] as number) / 1024;
      const x0 = sx(lo);
      const y = sy(c);
      return `<rect class="bin" data-count="${c}" x="${(x0 + 1).toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(0.5, sx(hi) - x0 - 2).toFixed(1)}" height="${(h - m.b - y).toFixed(1)}" fill="${PALETTE.config}"><title>${lo.toFixed(1)}–${hi.toFixed(1)} KiB: ${fmtCount(c)} chunks</title></rect>`;
    })
    .join("");
  return svg(
    id,
    title,
    w,
    h,
    axis(f, "y", yt, sy, "chunks") + axis(f, "x", xt, sx, "chunk size, KiB") + body,
  );
}

/** The sharing matrix as shaded cells, each with its percentage; darker is more shared. */
export function heatmap(id: string, title: string, s: Analysis["sharing"]): string {
  const n = s.images.length;
  const longest = Math.min(240, Math.max(40, ...s.images.map((x) => textWidth(x, FONT.label))));
  const left = longest + 12;
  const top = 36 + longest * Math.SQRT1_2 + 12;
  const cell = Math.max(26, Math.min(64, Math.floor((W - left - 20) / Math.max(n, 1))));
  const w = Math.max(W, left + n * cell + longest * Math.SQRT1_2 + 10);
  const h = top + n * cell + 6;
  const cells = s.matrix
    .map((row, a) =>
      row
        .map((v, b) => {
          // From near white to the chart blue; the figure switches to white where the cell is dark.
          const mix = (from: number, to: number) => Math.round(from + (to - from) * v);
          const fill = `rgb(${mix(244, 30)},${mix(247, 78)},${mix(251, 140)})`;
          const x = left + b * cell;
          const y = top + a * cell;
          const an = esc(s.images[a] as string);
          const bn = esc(s.images[b] as string);
          return (
            `<rect class="cell" data-a="${an}" data-b="${bn}" data-value="${v}" x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${fill}" stroke="#fff"><title>${bn} in ${an}: ${(v * 100).toFixed(1)} %</title></rect>` +
            `<text class="value" x="${x + cell / 2}" y="${y + cell / 2 + 4}" text-anchor="middle" font-size="${FONT.value}" fill="${v > 0.5 ? "#fff" : PALETTE.text}">${Math.round(v * 100)}</text>`
          );
        })
        .join(""),
    )
    .join("");
  const names = s.images
    .map((name, i) => {
      const cx = left + i * cell + cell / 2;
      return (
        `<text class="row-label" x="${left - 6}" y="${top + i * cell + cell / 2 + 4}" text-anchor="end" font-size="${FONT.label}">${esc(name)}</text>` +
        `<text class="col-label" x="${cx}" y="${top - 6}" transform="rotate(-45 ${cx} ${top - 6})" font-size="${FONT.label}">${esc(name)}</text>`
      );
    })
    .join("");
  return svg(id, title, w, h, names + cells);
}
