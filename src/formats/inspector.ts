/**
 * The shape every format inspector shares. An inspector sees the stream once, piece by piece,
 * keeps only bounded regions of it (region.ts), and ends with a Finding: whether the content
 * carries its format's signature, what it says about itself (virtual size, facts), and which
 * safety rules it breaks. Inspectors never throw at their caller: a header that cannot be
 * parsed is itself a finding ("malformed"), because hostile input is the normal case here.
 */
import { MAX_REGION, Region, Tail } from "./region.js";

export const FORMAT_NAMES = [
  "raw",
  "qcow2",
  "vmdk",
  "vhd",
  "vhdx",
  "vdi",
  "qed",
  "iso",
  "gpt",
  "luks",
] as const;
export type FormatName = (typeof FORMAT_NAMES)[number];

/** Every rule Tessera applies; each can be switched off by name (docs/formats.md). */
export const RULE_NAMES = [
  "malformed-header",
  "polyglot",
  "format-mismatch",
  "raw-over-formatted",
  "qcow2-version",
  "qcow2-backing-file",
  "qcow2-data-file",
  "qcow2-unknown-features",
  "vmdk-descriptor",
  "vmdk-create-type",
  "vmdk-extent-file",
  "vmdk-footer",
  "vhd-differencing",
  "vhdx-parent",
  "qed-banned",
  "luks-version",
  "mbr-partition-table",
] as const;
export type RuleName = (typeof RULE_NAMES)[number];

export interface Violation {
  rule: RuleName;
  reason: string;
}

export interface Finding {
  format: FormatName;
  /** The content carries this format's signature. */
  match: boolean;
  /** The signature is there but the structure behind it is invalid, truncated or out of reach. */
  malformed?: string;
  /** Bytes the guest sees, when the format says. */
  virtualSize?: number;
  violations: Violation[];
  facts: Record<string, unknown>;
}

/** Thrown inside an inspector when its format's structure is invalid; becomes `malformed`. */
export class Malformed extends Error {}

/** Largest virtual size accepted: what a JSON number holds exactly (8 PiB). */
const MAX_VIRTUAL_SIZE = Number.MAX_SAFE_INTEGER;

export abstract class Inspector {
  abstract readonly format: FormatName;
  /** The signature was seen (set by the subclass). */
  protected match = false;
  protected virtualSize?: number;
  protected readonly violations: Violation[] = [];
  protected readonly facts: Record<string, unknown> = {};
  /** Wants no more bytes, except its tail if it keeps one. */
  settled = false;
  /** The signature may be found at the end of the stream (VHD's footer), so no match is final before it. */
  protected matchInTail = false;
  private readonly regions: Region[] = [];
  private malformed?: string;
  private tail?: Tail;
  private total = 0;
  /** Calls of step(): bounded by pieces × (regions + 1), which the fuzz test holds it to. */
  steps = 0;

  /** Inspects what has arrived so far: reads complete regions, adds new ones, settles. */
  protected abstract step(): void;

  /** At the end of the stream, with its length; the tail, if any, is complete. */
  protected end(_total: number, _tail: Buffer | undefined): void {}

  feed(piece: Uint8Array): void {
    const at = this.total;
    this.total += piece.length;
    this.tail?.capture(piece);
    if (this.settled) return;
    try {
      let count: number;
      do {
        count = this.regions.length;
        for (const r of this.regions) r.capture(piece, at);
        this.steps++;
        this.step();
      } while (this.regions.length !== count && !this.settled);
    } catch (e) {
      this.fail(e);
    }
  }

  private result?: Finding;

  finish(): Finding {
    if (this.result) return this.result;
    try {
      if (!this.settled && this.match) {
        const open = this.regions.find((r) => !r.complete);
        throw new Malformed(
          open?.missed
            ? `a structure at offset ${open.offset} lies behind data already passed`
            : `the stream ends before the ${this.format} structures it declares (${this.total} bytes)`,
        );
      }
      if ((this.match || this.matchInTail) && !this.malformed) this.end(this.total, this.tail?.bytes());
    } catch (e) {
      this.fail(e);
    }
    if (this.virtualSize !== undefined && !(this.virtualSize >= 0 && this.virtualSize <= MAX_VIRTUAL_SIZE)) {
      this.malformed ??= `virtual size ${this.virtualSize} is out of range`;
    }
    this.result = {
      format: this.format,
      match: this.match,
      ...(this.malformed ? { malformed: this.malformed } : {}),
      ...(this.match && !this.malformed && this.virtualSize !== undefined
        ? { virtualSize: this.virtualSize }
        : {}),
      violations: this.match && !this.malformed ? this.violations : [],
      facts: this.facts,
    };
    return this.result;
  }

  /**
   * What is already certain before the end of the stream, for rejecting early: violations and
   * a malformed header are never withdrawn, and a settled inspector's `match` is final unless
   * its signature may still turn up in the tail.
   */
  sofar(): { match: boolean | undefined; malformed?: string; violations: readonly Violation[] } {
    const final = this.settled && !this.matchInTail;
    return {
      match: final || this.match ? this.match : undefined,
      ...(this.malformed ? { malformed: this.malformed } : {}),
      violations: this.match && !this.malformed ? this.violations : [],
    };
  }

  /** Bytes this inspector holds: its regions and its tail. */
  footprint(): number {
    return this.regions.reduce((n, r) => n + r.data.length, 0) + (this.tail?.length ?? 0);
  }

  protected region(offset: number, length: number): Region {
    const r = new Region(offset, Math.min(length, MAX_REGION));
    this.regions.push(r);
    return r;
  }

  /**
   * The common first step of formats with a fixed header: once `signatureBytes` have arrived,
   * a miss settles the inspector and a hit sets `match`; true once the whole header is there
   * (the inspector is then settled and reads the header).
   */
  protected headerReady(
    header: Region,
    signatureBytes: number,
    isSignature: (b: Buffer) => boolean,
  ): boolean {
    if (header.length < signatureBytes) return false;
    if (!this.match) {
      if (!isSignature(header.bytes)) {
        this.settled = true;
        return false;
      }
      this.match = true;
    }
    if (!header.complete) return false;
    this.settled = true;
    return true;
  }

  protected keepTail(length: number): void {
    this.tail ??= new Tail(length);
  }

  protected get seen(): number {
    return this.total;
  }

  protected violate(rule: RuleName, reason: string): void {
    this.violations.push({ rule, reason });
  }

  private fail(e: unknown): void {
    this.settled = true;
    // Without the signature, an unparsable structure just means "not this format".
    if (!this.match) return;
    this.malformed = e instanceof Malformed ? e.message : `unreadable header (${(e as Error).message})`;
  }
}

/** A 64-bit field as a number; values beyond 2^53 are malformed in any field used as a size. */
export function u64(buf: Buffer, at: number, endian: "le" | "be"): number {
  const v = endian === "le" ? buf.readBigUInt64LE(at) : buf.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER))
    throw new Malformed(`a 64-bit field at ${at} is absurdly large (${v})`);
  return Number(v);
}

/** True if `buf` starts with `sig` at `at`. */
export function startsWith(buf: Buffer, sig: Buffer | string, at = 0): boolean {
  const s = typeof sig === "string" ? Buffer.from(sig, "latin1") : sig;
  return buf.length >= at + s.length && buf.subarray(at, at + s.length).equals(s);
}
