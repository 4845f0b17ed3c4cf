/**
 * `tessera stats` output: dedup accounting as a table for people, or JSON for scripts.
 */
import type { ImageRecord } from "../catalog/image-records.js";
import type { Engine } from "../engine/engine.js";
import { imageStats } from "../images/images.js";

/** The report for the whole directory, or for one image's unique and shared bytes. */
export async function statsText(
  engine: Engine,
  image: ImageRecord | undefined,
  json: boolean,
): Promise<string> {
  if (image) {
    const st = await imageStats(engine, image);
    if (json) return `${JSON.stringify(st)}\n`;
    return Object.entries(st)
      .map(([k, v]) => `${k.padEnd(20)} ${v}\n`)
      .join("");
  }
  const report = await engine.stats();
  if (json) return `${JSON.stringify(report)}\n`;
  const rows = [
    ["store", "objects", "images", "logical", "stored", "packs", "dedup"],
    ...report.stores.map((s) => [
      s.store,
      String(s.objects),
      String(s.holders),
      megabytes(s.logicalBytes),
      megabytes(s.storedBytes),
      megabytes(s.packBytes),
      `×${s.dedupRatio}`,
    ]),
    [
      "total",
      "",
      "",
      megabytes(report.total.logicalBytes),
      megabytes(report.total.storedBytes),
      megabytes(report.total.packBytes),
      `×${report.total.dedupRatio}`,
    ],
  ];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] as string).length))) ?? [];
  return rows
    .map(
      (r) =>
        `${r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ")}\n`,
    )
    .join("");
}

function megabytes(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}
