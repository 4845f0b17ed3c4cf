/**
 * `tessera inspect`: the upload's format inspection, on a file or stdin, without a server or
 * a store, so an operator can see beforehand what an upload would be told.
 */
import { readFilePieces } from "../engine/file-source.js";
import type { Detection } from "../formats/detect.js";
import { inspectAll } from "../formats/inspect-stream.js";
import type { Violation } from "../formats/inspector.js";
import type { FormatPolicy } from "../formats/rules.js";

export type InspectReport = Detection & { violations: Violation[] };

/**
 * The detection and the broken rules of `file` ("-": stdin). Without `declared` (the
 * --disk-format an upload would carry) the content is checked as the format it is detected as.
 */
export async function inspectFile(
  file: string,
  declared: string | undefined,
  policy: FormatPolicy,
): Promise<InspectReport> {
  const source = file === "-" ? process.stdin : readFilePieces(file);
  const { detection, violations } = await inspectAll(source, declared, policy);
  return { ...detection, violations };
}
