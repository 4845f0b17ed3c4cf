/**
 * The safety rules: what the inspectors found, held against what the client declared and
 * against the operator's policy. Each rule has a name, is on by default (Glance's defaults)
 * and can be switched off by name. docs/formats.md gives each rule's reason.
 */
import { TesseraError } from "../errors.js";
import type { Detection, Partial } from "./detect.js";
import { FORMAT_NAMES, type FormatName, RULE_NAMES, type RuleName, type Violation } from "./inspector.js";

export interface FormatPolicy {
  /** Inspect uploads at all. Off: no rule applies and virtual_size stays unset, as in old Glance. */
  inspect: boolean;
  /** Each rule by name; false switches it off. */
  rules: Record<RuleName, boolean>;
  /** VMDK create types accepted (Glance's vmdk_allowed_types). */
  vmdkCreateTypes: string[];
}

export const DEFAULT_FORMAT_POLICY: FormatPolicy = {
  inspect: true,
  rules: Object.fromEntries(RULE_NAMES.map((r) => [r, true])) as Record<RuleName, boolean>,
  vmdkCreateTypes: ["streamOptimized", "monolithicSparse"],
};

/** Declared formats with no structure of their own to inspect: raw disks, kernels, ramdisks. */
const RAW_LIKE = new Set(["raw", "ami", "ari", "aki", "ploop"]);
const INSPECTED = new Set<string>(FORMAT_NAMES);

export class FormatRejectedError extends TesseraError {
  constructor(readonly violations: Violation[]) {
    super(
      "format_rejected",
      `Image content rejected: ${violations.map((v) => `[${v.rule}] ${v.reason}`).join("; ")}`,
    );
  }
}

/** The violations of the enabled rules, given everything the inspectors found. */
export function judge(d: Detection, declared: string, policy: FormatPolicy): Violation[] {
  const out: Violation[] = [];
  for (const f of d.findings) {
    if (f.malformed) out.push({ rule: "malformed-header", reason: `${f.format}: ${f.malformed}` });
    out.push(...f.violations);
  }
  if (d.matches.length > 1) {
    out.push({ rule: "polyglot", reason: `the content matches several formats: ${d.matches.join(", ")}` });
  } else {
    const mismatch = declaredMismatch(declared, d.format ?? "raw");
    if (mismatch) out.push(mismatch);
  }
  return enabled(out, policy);
}

/** The violations already certain before the end of the stream. */
export function judgeEarly(p: Partial, declared: string, policy: FormatPolicy): Violation[] {
  const out: Violation[] = [...p.violations];
  for (const m of p.malformed) out.push({ rule: "malformed-header", reason: `${m.format}: ${m.reason}` });
  if (p.matches.length > 1) {
    out.push({ rule: "polyglot", reason: `the content matches several formats: ${p.matches.join(", ")}` });
  }
  const formatted = p.matches.find((m) => m !== "gpt");
  if (RAW_LIKE.has(declared) && formatted) out.push(rawOver(declared, formatted));
  if (INSPECTED.has(declared) && declared !== "raw" && p.ruledOut.includes(declared as FormatName)) {
    out.push({ rule: "format-mismatch", reason: `the content is not ${declared} as declared` });
  }
  return enabled(out, policy);
}

function declaredMismatch(declared: string, detected: FormatName): Violation | undefined {
  if (declared === detected) return undefined;
  const rawContent = detected === "raw" || detected === "gpt";
  if (RAW_LIKE.has(declared)) return rawContent ? undefined : rawOver(declared, detected);
  return { rule: "format-mismatch", reason: `the content is ${detected}, not ${declared} as declared` };
}

function rawOver(declared: string, detected: FormatName): Violation {
  return { rule: "raw-over-formatted", reason: `the content is ${detected}, declared as ${declared}` };
}

function enabled(vs: Violation[], policy: FormatPolicy): Violation[] {
  const seen = new Set<string>();
  return vs.filter((v) => {
    const key = `${v.rule}:${v.reason}`;
    if (!policy.rules[v.rule] || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
