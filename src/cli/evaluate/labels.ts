/**
 * Where to write the names of a scatter plot's points so that no name covers another or a
 * point: configurations with similar figures sit a few pixels apart, and names written at a fixed
 * offset pile into one unreadable cluster. Each name takes the first free spot next to its point,
 * else the nearest free spot further out, joined to its point by a leader line.
 */

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Placed {
  box: Box;
  /** Whether the name sits away from its point and needs a line to it. */
  leader: boolean;
}

/**
 * A generous width for `text` at `size` px in a sans-serif face: boxes estimated here must hold
 * the drawn text, or names the layout keeps apart could still touch.
 */
export function textWidth(text: string, size: number): number {
  let em = 0;
  for (const c of text) {
    if (/[iljtfr.,:;'|!() -]/.test(c)) em += 0.4;
    else if (/[A-Zmw@%#&]/.test(c)) em += 0.95;
    else em += 0.66;
  }
  return em * size + 2;
}

/** The height of a line of text at `size` px, ascent to descent. */
export const lineHeight = (size: number) => size * 1.25;

function overlaps(a: Box, b: Box, pad: number): boolean {
  return a.x < b.x + b.w + pad && b.x < a.x + a.w + pad && a.y < b.y + b.h + pad && b.y < a.y + a.h + pad;
}

function inside(a: Box, area: Box): boolean {
  return a.x >= area.x && a.y >= area.y && a.x + a.w <= area.x + area.w && a.y + a.h <= area.y + area.h;
}

/** Spots for a w×h name around a point of radius r, nearest first. */
function candidates(p: { x: number; y: number }, w: number, h: number, r: number): Box[] {
  const g = r + 3;
  const d = g * 0.7;
  const near: Box[] = [
    { x: p.x + g, y: p.y - h / 2, w, h },
    { x: p.x - g - w, y: p.y - h / 2, w, h },
    { x: p.x + d, y: p.y - d - h, w, h },
    { x: p.x - d - w, y: p.y - d - h, w, h },
    { x: p.x + d, y: p.y + d, w, h },
    { x: p.x - d - w, y: p.y + d, w, h },
    { x: p.x - w / 2, y: p.y - g - h, w, h },
    { x: p.x - w / 2, y: p.y + g, w, h },
  ];
  const far: Box[] = [];
  for (const ring of [28, 42, 58, 76, 96, 120, 150, 185, 225, 270]) {
    for (let k = 0; k < 36; k++) {
      const a = (k * Math.PI) / 18;
      // The ring is measured from the point to the box's nearest edge, whatever its direction.
      const cx = p.x + Math.cos(a) * (ring + w / 2);
      const cy = p.y + Math.sin(a) * (ring + h / 2);
      far.push({ x: cx - w / 2, y: cy - h / 2, w, h });
    }
  }
  return [...near, ...far];
}

/**
 * Boxes for `labels` (sizes, in the order of `points`) inside `area`, apart from each other and
 * from every point by `pad`. When no spot is free (a very crowded plot), a leader crossing
 * something is accepted before a name over another.
 */
export function placeLabels(
  points: { x: number; y: number }[],
  labels: { w: number; h: number }[],
  area: Box,
  r: number,
  pad = 3,
): Placed[] {
  const dots: Box[] = points.map((p) => ({ x: p.x - r, y: p.y - r, w: 2 * r, h: 2 * r }));
  const taken: Box[] = [];
  const lines: Segment[] = [];
  const placed: Placed[] = new Array(points.length);
  // The most crowded points choose first, while the spots around them are still free.
  const crowd = points.map((p) => points.filter((q) => Math.hypot(q.x - p.x, q.y - p.y) < 40).length);
  const order = points.map((_, i) => i).sort((a, b) => (crowd[b] as number) - (crowd[a] as number) || a - b);
  for (const i of order) {
    const p = points[i] as { x: number; y: number };
    const { w, h } = labels[i] as { w: number; h: number };
    const spots = candidates(p, w, h, r);
    let best = { box: spots[0] as Box, leader: false, line: undefined as Segment | undefined };
    let bestCost = Number.POSITIVE_INFINITY;
    for (const [k, box] of spots.entries()) {
      const far = k >= 8;
      let cost = k;
      if (!inside(box, area)) cost += 1e6;
      for (const t of taken) if (overlaps(box, t, pad)) cost += 1e5;
      for (const dot of dots) if (overlaps(box, dot, 1)) cost += 1e5;
      // A leader through another name or point, or across another leader, invites misreading;
      // still, better than names written over each other, when nothing else is left.
      const line = far ? leader(p, box, r) : undefined;
      if (line) {
        for (const t of taken) if (crosses(line, t)) cost += 1e4;
        for (const [j, dot] of dots.entries()) if (j !== i && crosses(line, dot)) cost += 1e4;
        for (const l of lines) if (intersect(line, l)) cost += 1e4;
      }
      if (cost < bestCost) {
        best = { box, leader: far, line };
        bestCost = cost;
      }
      if (cost < 1e4) break;
    }
    taken.push(best.box);
    if (best.line) lines.push(best.line);
    placed[i] = { box: best.box, leader: best.leader };
  }
  return placed;
}

type Segment = [number, number, number, number];

/** Whether the segment passes through the box (sampled every 2 px: boxes here are larger). */
function crosses([x1, y1, x2, y2]: Segment, b: Box): boolean {
  const steps = Math.max(1, Math.ceil(Math.hypot(x2 - x1, y2 - y1) / 2));
  for (let s = 1; s < steps; s++) {
    const x = x1 + ((x2 - x1) * s) / steps;
    const y = y1 + ((y2 - y1) * s) / steps;
    if (x > b.x && x < b.x + b.w && y > b.y && y < b.y + b.h) return true;
  }
  return false;
}

function intersect([ax, ay, bx, by]: Segment, [cx, cy, dx, dy]: Segment): boolean {
  const turn = (px: number, py: number, qx: number, qy: number, rx: number, ry: number) =>
    Math.sign((qx - px) * (ry - py) - (qy - py) * (rx - px));
  return (
    turn(ax, ay, bx, by, cx, cy) * turn(ax, ay, bx, by, dx, dy) < 0 &&
    turn(cx, cy, dx, dy, ax, ay) * turn(cx, cy, dx, dy, bx, by) < 0
  );
}

/** The leader line from a point's edge to the nearest point of its name's box. */
export function leader(p: { x: number; y: number }, box: Box, r: number): Segment {
  const bx = Math.max(box.x, Math.min(p.x, box.x + box.w));
  const by = Math.max(box.y, Math.min(p.y, box.y + box.h));
  const len = Math.hypot(bx - p.x, by - p.y) || 1;
  return [p.x + ((bx - p.x) * r) / len, p.y + ((by - p.y) * r) / len, bx, by];
}
