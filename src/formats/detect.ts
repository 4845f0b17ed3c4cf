/**
 * Runs every inspector over one stream at once and decides what the content is. The decision
 * is Glance's: no signature means raw; one means that format; a bootable ISO that also
 * carries a partition table is an ISO; anything else that matches twice is a polyglot, which
 * the rules refuse because different readers would see different disks.
 */
import { GptInspector } from "./gpt.js";
import type { Finding, FormatName, Inspector, Violation } from "./inspector.js";
import { IsoInspector } from "./iso.js";
import { LuksInspector } from "./luks.js";
import { Qcow2Inspector } from "./qcow2.js";
import { QedInspector } from "./qed.js";
import { VdiInspector } from "./vdi.js";
import { VhdInspector } from "./vhd.js";
import { VhdxInspector } from "./vhdx.js";
import { VmdkInspector, type VmdkOptions } from "./vmdk.js";

export interface Detection {
  /** What the content is: the one format that matched, or raw. Undefined for a polyglot. */
  format: FormatName | undefined;
  /** Every format whose signature the content carries (a bootable ISO's partition table omitted). */
  matches: FormatName[];
  /** The guest-visible size, when the decided format says (raw: the stream's length). */
  virtualSize?: number;
  /** Findings of the formats that matched or whose headers were malformed. */
  findings: Finding[];
  size: number;
}

/** A certain-so-far view, for rejecting before the end of the stream. */
export interface Partial {
  matches: FormatName[];
  /** Formats whose inspectors already know the content is not theirs. */
  ruledOut: FormatName[];
  malformed: { format: FormatName; reason: string }[];
  violations: Violation[];
}

export class FormatDetector {
  private readonly inspectors: Inspector[];
  private size = 0;

  constructor(vmdk: VmdkOptions) {
    this.inspectors = [
      new Qcow2Inspector(),
      new VmdkInspector(vmdk),
      new VhdInspector(),
      new VhdxInspector(),
      new VdiInspector(),
      new QedInspector(),
      new IsoInspector(),
      new GptInspector(),
      new LuksInspector(),
    ];
  }

  feed(piece: Uint8Array): void {
    this.size += piece.length;
    for (const i of this.inspectors) i.feed(piece);
  }

  /** Bytes all inspectors hold, whatever the stream's length. */
  footprint(): number {
    return this.inspectors.reduce((n, i) => n + i.footprint(), 0);
  }

  /** Inspection steps taken so far, summed over the inspectors. */
  steps(): number {
    return this.inspectors.reduce((n, i) => n + i.steps, 0);
  }

  /** True once no inspector can learn more before the end of the stream. */
  get settled(): boolean {
    return this.inspectors.every((i) => i.settled);
  }

  sofar(): Partial {
    const p: Partial = { matches: [], ruledOut: [], malformed: [], violations: [] };
    for (const i of this.inspectors) {
      const s = i.sofar();
      if (s.match === true) p.matches.push(i.format);
      if (s.match === false) p.ruledOut.push(i.format);
      if (s.malformed) p.malformed.push({ format: i.format, reason: s.malformed });
      p.violations.push(...s.violations);
    }
    p.matches = withoutBootPartitionTable(p.matches);
    return p;
  }

  finish(): Detection {
    const all = this.inspectors.map((i) => i.finish());
    const matches = withoutBootPartitionTable(all.filter((f) => f.match).map((f) => f.format));
    const findings = all.filter((f) => f.match || f.malformed);
    const format = matches.length === 0 ? "raw" : matches.length === 1 ? matches[0] : undefined;
    const virtualSize =
      format === "raw"
        ? this.size
        : findings.find((f) => f.format === format && f.virtualSize !== undefined)?.virtualSize;
    return {
      format,
      matches,
      findings,
      size: this.size,
      ...(virtualSize !== undefined ? { virtualSize } : {}),
    };
  }
}

/** A bootable ISO carries an MBR or GPT in its system area; it is still an ISO. */
function withoutBootPartitionTable(matches: FormatName[]): FormatName[] {
  return matches.includes("iso") ? matches.filter((m) => m !== "gpt") : matches;
}
