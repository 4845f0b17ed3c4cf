/**
 * Reading a V8 .cpuprofile (node --cpu-prof): self time per function, the garbage collector's
 * share, for the download bench's profile of a server under load.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Milliseconds sampled, idle included. */
  totalMs: number;
  /** Share of the non-idle samples, percent. */
  busyPercent: number;
  gcPercent: number;
  top: { fn: string; percent: number }[];
}

function label(n: ProfileNode): string {
  const f = n.callFrame;
  const where = f.url ? `${f.url.replace(/^.*\/(node_modules|dist)\//, "$1/")}:${f.lineNumber + 1}` : "";
  return `${f.functionName || "(anonymous)"} ${where}`.trim();
}

/** Self time by function over every .cpuprofile in `dir` (one per process). */
export async function summarizeProfiles(dir: string, top = 15): Promise<ProfileSummary> {
  const self = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const f of (await readdir(dir)).filter((n) => n.endsWith(".cpuprofile"))) {
    const p = JSON.parse(await readFile(join(dir, f), "utf8")) as CpuProfile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    p.samples.forEach((id, i) => {
      const ms = (p.timeDeltas[i] ?? 0) / 1000;
      const node = byId.get(id) as ProfileNode;
      const name = label(node);
      total += ms;
      if (name === "(idle)" || name === "(program)") idle += ms;
      self.set(name, (self.get(name) ?? 0) + ms);
    });
  }
  const busy = total - idle;
  const pct = (ms: number) => Math.round((ms / busy) * 1000) / 10;
  const ranked = [...self]
    .filter(([n]) => n !== "(idle)" && n !== "(program)")
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, ms]) => ({ fn, percent: pct(ms) }));
  return {
    totalMs: Math.round(total),
    busyPercent: Math.round((busy / total) * 1000) / 10,
    gcPercent: pct(self.get("(garbage collector)") ?? 0),
    top: ranked,
  };
}
