/**
 * Checks that an evaluation report (report.html, open in a browser page) reads well, not only
 * that it renders: each chart says what it shows and scales to the page, axes step by 1, 2 or
 * 5 × 10^k, the scatter plot's names cover neither each other nor its points, and the tables
 * write sizes in units and counts with separators, each figure the one in the JSON.
 */
import type { Page } from "playwright-core";
import { expect } from "vitest";

const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };
/** Columns whose cells are sizes, by heading (soft hyphens removed). */
const SIZE_COLUMNS = ["stored", "pack objects", "size", "peak RSS"];
const COUNT_COLUMNS = ["chunks", "packs"];

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

const apart = (a: Box, b: Box) =>
  a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y || b.y + b.height <= a.y;

/** Whether `step` is 1, 2 or 5 times a power of ten. */
function nice(step: number): boolean {
  const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
  return [1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-6);
}

export async function expectReadableReport(page: Page, json: string): Promise<void> {
  const charts = page.locator("svg[id^='chart-']");
  const n = await charts.count();
  expect(n).toBeGreaterThanOrEqual(2);
  for (let i = 0; i < n; i++) {
    const chart = charts.nth(i);
    const id = await chart.getAttribute("id");
    // One sentence under each chart, saying what it shows.
    const caption = await chart.evaluate(
      (e) => e.closest("figure")?.querySelector("figcaption")?.textContent,
    );
    expect(caption?.trim().length ?? 0, `${id} caption`).toBeGreaterThan(40);
    // Drawn in its own coordinates, as wide as the column it sits in.
    expect(await chart.getAttribute("viewBox"), `${id} viewBox`).toMatch(/^0 0 \d+(\.\d+)? \d+(\.\d+)?$/);
    expect(await chart.getAttribute("width")).toBeNull();
    const [w, col] = await chart.evaluate((e) => [
      e.getBoundingClientRect().width,
      (e.parentElement as HTMLElement).clientWidth,
    ]);
    expect(Math.abs((w as number) - (col as number)), `${id} width`).toBeLessThan(1.5);
    for (const axis of ["x", "y"]) {
      const ticks = (await chart.locator(`text.tick.${axis}`).allTextContents()).map((t) =>
        Number(t.replace(/,/g, "")),
      );
      // The bars are labelled with their values and the heatmap with its percentages: no axes.
      if (id === "chart-stored" || id === "chart-sharing") continue;
      expect(ticks.length, `${id} ${axis} ticks`).toBeGreaterThanOrEqual(3);
      const step = (ticks[1] as number) - (ticks[0] as number);
      expect(nice(step), `${id} ${axis} step ${step}: ${ticks.join(" ")}`).toBe(true);
      for (const [k, t] of ticks.entries()) {
        expect(t, `${id} ${axis} ticks ${ticks.join(" ")}`).toBeCloseTo((ticks[0] as number) + k * step, 6);
      }
    }
  }

  // The scatter plot's names: apart from each other and from every point.
  const boxes = (sel: string) =>
    page.locator(sel).evaluateAll((els) =>
      els.map((e) => {
        const b = (e as SVGGraphicsElement).getBBox();
        return { x: b.x, y: b.y, width: b.width, height: b.height, text: e.textContent ?? "" };
      }),
    );
  const labels = await boxes("#chart-tradeoff text.label");
  const points = await boxes("#chart-tradeoff circle.point");
  expect(labels.length).toBe(points.length);
  for (const [i, a] of labels.entries()) {
    for (const b of labels.slice(i + 1))
      expect(apart(a, b), `"${a.text}" and "${b.text}" overlap`).toBe(true);
    for (const p of points) expect(apart(a, p), `"${a.text}" covers a point`).toBe(true);
  }

  // Tables: sizes in units, counts with separators; each figure the JSON's.
  const tables = await page.locator("table").evaluateAll((ts) =>
    ts.map((t) => ({
      head: [...t.querySelectorAll("th")].map((th) => (th.textContent ?? "").replace(/\u00ad/g, "")),
      rows: [...t.querySelectorAll("tbody tr")].map((tr) =>
        [...tr.querySelectorAll("td")].map((td) => ({
          text: td.textContent ?? "",
          value: td.getAttribute("data-value"),
        })),
      ),
    })),
  );
  let sizes = 0;
  for (const t of tables) {
    for (const row of t.rows) {
      for (const [i, cell] of row.entries()) {
        const head = t.head[i] as string;
        if (/^\d[\d,.]*$/.test(cell.text.replace(/×$/, "")) || cell.value !== null) {
          expect(cell.value, `${head}: ${cell.text} without its figure`).not.toBeNull();
          expect(json, `${head}: ${cell.value}`).toContain(String(cell.value));
        }
        if (cell.value === null) continue;
        const value = Number(cell.value);
        if (SIZE_COLUMNS.includes(head)) {
          const [, digits = "", unit = ""] =
            /^(\d[\d,]*(?:\.\d+)?) (B|KiB|MiB|GiB|TiB)$/.exec(cell.text) ?? [];
          expect(unit, `${head}: "${cell.text}" carries a unit`).not.toBe("");
          const shown = Number(digits.replace(/,/g, "")) * (UNITS[unit] ?? Number.NaN);
          expect(Math.abs(shown - value) / value, `${head}: ${cell.text} for ${value}`).toBeLessThan(0.006);
          sizes++;
        }
        if (COUNT_COLUMNS.includes(head)) {
          expect(Number(cell.text.replace(/,/g, ""))).toBe(value);
          if (value >= 1000) expect(cell.text, `${head}: thousands separated`).toMatch(/^\d{1,3}(,\d{3})+$/);
        }
      }
    }
    for (const h of t.head.filter((x) => /ingest|download/.test(x))) expect(h).toContain("MB/s");
  }
  expect(sizes).toBeGreaterThan(0);
}
