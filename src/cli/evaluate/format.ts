/**
 * How the report writes numbers for a reader: sizes in binary units at about three significant
 * digits, counts with thousands separators, and axis ticks on round steps (1, 2 or 5 × 10^k), so
 * that a chart's scale can be read at a glance. The exact figures stay in report.json.
 */

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const COUNT = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

/** `n` with thousands separators, at most one decimal: 37,020; 2,346.7. */
export function fmtCount(n: number): string {
  return COUNT.format(n);
}

export const BYTE_UNITS = [
  { name: "B", size: 1 },
  { name: "KiB", size: 1024 },
  { name: "MiB", size: 1024 ** 2 },
  { name: "GiB", size: 1024 ** 3 },
  { name: "TiB", size: 1024 ** 4 },
] as const;

export type ByteUnit = (typeof BYTE_UNITS)[number];

/** The largest unit that `bytes` is at least one of (bytes below 1 KiB stay bytes). */
export function byteUnit(bytes: number): ByteUnit {
  let unit: ByteUnit = BYTE_UNITS[0];
  for (const u of BYTE_UNITS) if (Math.abs(bytes) >= u.size) unit = u;
  return unit;
}

const decimals = (v: number) => (Math.abs(v) < 10 ? 2 : Math.abs(v) < 100 ? 1 : 0);

/** 1.09 GiB, 298 MiB, 62.5 KiB, 512 B. */
export function fmtBytes(bytes: number): string {
  let unit = byteUnit(bytes);
  let v = bytes / unit.size;
  // 1023.7 MiB rounds to "1024 MiB": write it as the next unit instead.
  const next = BYTE_UNITS[BYTE_UNITS.indexOf(unit) + 1];
  if (next && Number(v.toFixed(decimals(v))) >= 1024) {
    unit = next;
    v = bytes / unit.size;
  }
  if (unit.size === 1) return `${fmtCount(bytes)} B`;
  return `${v.toFixed(decimals(v))} ${unit.name}`;
}

/**
 * One unit for sizes compared side by side (a chart, a table column), so that digits compare
 * directly: the median's, which puts most figures between 1 and 1023 of it.
 */
export function unitFor(values: number[]): ByteUnit {
  const sorted = [...values].sort((a, b) => a - b);
  return byteUnit(sorted[Math.floor((sorted.length - 1) / 2)] ?? 0);
}

/** `bytes` in `unit`, about three significant digits: 0.291 GiB, 37.5 MiB, 1,119 MiB. */
export function fmtIn(bytes: number, unit: ByteUnit): string {
  const v = bytes / unit.size;
  if (unit.size === 1) return `${fmtCount(bytes)} B`;
  // Below one unit (a small figure beside large ones), as many decimals as three digits need.
  const d = v > 0 && v < 1 ? Math.min(4, 2 - Math.floor(Math.log10(v))) : decimals(v);
  return `${v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d })} ${unit.name}`;
}

/** A rate or a ratio of a few hundred or more needs no decimals; below, one. */
export function fmtRate(v: number): string {
  return Math.abs(v) >= 100 ? fmtCount(Math.round(v)) : fmtCount(Math.round(v * 10) / 10);
}

/** Always MiB, whole: memory figures compare best in one unit. */
export function fmtMiB(bytes: number): string {
  return `${fmtCount(Math.round(bytes / 1024 ** 2))} MiB`;
}

export interface Ticks {
  step: number;
  /** Tick values, ascending, each a multiple of step. */
  values: number[];
  /** The axis range: the outer ticks when `extend`, else the data range. */
  lo: number;
  hi: number;
  /** The tick values as labels, with as many decimals as the step needs. */
  labels: string[];
}

/**
 * Ticks for the range lo..hi, at most about `target` steps of 1, 2 or 5 × 10^k. With `extend`
 * the axis grows to the ticks around the data (a scale from 0 ends on a tick); without, only the
 * ticks inside lo..hi are kept (an axis whose ends mean something, like a chunker's min and max).
 */
export function niceTicks(lo: number, hi: number, target = 5, extend = true): Ticks {
  const span = hi > lo ? hi - lo : Math.abs(hi) || 1;
  const mag = 10 ** Math.floor(Math.log10(span / target));
  const step = ([1, 2, 5, 10].map((f) => f * mag).find((s) => span / s <= target + 1e-9) ??
    10 * mag) as number;
  const places = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  // The slack keeps a bound that is a multiple of step (up to rounding) from adding a tick.
  const first = extend ? Math.floor(lo / step + 1e-9) : Math.ceil(lo / step - 1e-9);
  const last = extend ? Math.ceil(hi / step - 1e-9) : Math.floor(hi / step + 1e-9);
  const values: number[] = [];
  for (let i = first; i <= last; i++) values.push(Number((i * step).toFixed(places)));
  return {
    step,
    values,
    lo: extend ? (values[0] as number) : lo,
    hi: extend ? (values[values.length - 1] as number) : hi,
    labels: values.map((v) =>
      v.toLocaleString("en-US", { minimumFractionDigits: places, maximumFractionDigits: places }),
    ),
  };
}
