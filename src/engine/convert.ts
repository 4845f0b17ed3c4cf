/**
 * Conversion of a stored object from one disk format to another (the image
 * service's conversion step): the object is written to a scratch file, inspected on the way under its
 * declared format, converted by qemu-img (qemu-img.ts), and the result ingested like any
 * upload (inspected again under the target format), so its chunks dedup against everything
 * already stored. Nothing is committed unless every step succeeds; scratch files are removed
 * whatever happens.
 */
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { CatalogTx } from "../catalog/catalog.js";
import { type Inspection, inspectStream } from "../formats/inspect-stream.js";
import type { RuleName } from "../formats/inspector.js";
import { type ConversionLimits, DEFAULT_CONVERSION_LIMITS, qemuImgConvert } from "../formats/qemu-img.js";
import { type FormatPolicy, FormatRejectedError } from "../formats/rules.js";
import type { Engine } from "./engine.js";
import { readFilePieces } from "./file-source.js";
import type { CommittedObject, IngestResult } from "./ingest.js";

/**
 * Rules that stand between qemu-img and the host's files: they hold for a conversion's source
 * even where an operator switched them off for plain uploads, since qemu-img, unlike a
 * download, follows what they catch.
 */
const ALWAYS_FOR_CONVERSION: RuleName[] = [
  "malformed-header",
  "polyglot",
  "format-mismatch",
  "raw-over-formatted",
  "qcow2-backing-file",
  "qcow2-data-file",
  "qcow2-unknown-features",
  "vmdk-descriptor",
  "vmdk-extent-file",
  "vmdk-footer",
  "vhd-differencing",
  "vhdx-parent",
];

export interface ConvertOptions {
  from: string;
  to: string;
  policy: FormatPolicy;
  limits?: ConversionLimits;
  /** Where scratch files go (default: the OS temp directory). */
  scratchDir?: string;
  /** Refuse a result larger than this many bytes. */
  maxBytes?: number;
  /** The store the result goes to (default: the default store). */
  store?: string;
  /** Runs inside the commit of the result, with its inspection; throwing commits nothing. */
  inCommit?: (tx: CatalogTx, object: CommittedObject, inspection: Inspection) => Promise<void>;
}

export interface ConvertResult {
  object: IngestResult;
  /** The converted image's inspection (format, virtual size). */
  inspection: Inspection;
}

export async function convertObject(
  engine: Engine,
  manifestId: string,
  o: ConvertOptions,
): Promise<ConvertResult> {
  const sourcePolicy: FormatPolicy = {
    ...o.policy,
    inspect: true,
    rules: { ...o.policy.rules, ...Object.fromEntries(ALWAYS_FOR_CONVERSION.map((r) => [r, true])) },
  };
  const scratch = await mkdtemp(join(o.scratchDir ?? tmpdir(), "tessera-convert-"));
  try {
    const source = join(scratch, "source");
    const inspected = inspectStream(engine.read(manifestId), o.from, sourcePolicy);
    await pipeline(inspected.pieces, createWriteStream(source));
    const verdict = inspected.result();
    if (verdict.violations.length > 0) throw new FormatRejectedError(verdict.violations);
    const target = join(scratch, "target");
    // qemu-img works in an empty directory of its own: nothing relative resolves to anything.
    const work = await mkdtemp(join(scratch, "work-"));
    const limits = o.limits ?? DEFAULT_CONVERSION_LIMITS;
    await qemuImgConvert({ source, from: o.from, target, to: o.to, cwd: work, limits });
    const out = inspectStream(readFilePieces(target), o.to, sourcePolicy);
    let inspection: Inspection | undefined;
    const object = await engine.ingest(out.pieces, {
      ...(o.maxBytes !== undefined ? { maxBytes: o.maxBytes } : {}),
      ...(o.store !== undefined ? { store: o.store } : {}),
      inCommit: async (tx, obj) => {
        inspection = out.result();
        if (inspection.violations.length > 0) throw new FormatRejectedError(inspection.violations);
        await o.inCommit?.(tx, obj, inspection);
      },
    });
    return { object, inspection: inspection as Inspection };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
