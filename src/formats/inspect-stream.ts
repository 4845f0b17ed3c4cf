/**
 * Format inspection as a tee on an upload: the bytes pass through unchanged on their way to
 * the chunker while the detector looks at them, in the same pass. A rule broken beyond doubt
 * stops the stream at once (a hostile multi-gigabyte upload is refused at its header); the
 * rest is judged when the stream ends.
 */
import { type Detection, FormatDetector } from "./detect.js";
import type { Violation } from "./inspector.js";
import { type FormatPolicy, FormatRejectedError, judge, judgeEarly } from "./rules.js";

export interface Inspection {
  detection: Detection;
  violations: Violation[];
}

export interface InspectedStream {
  pieces: AsyncIterable<Uint8Array>;
  /** The verdict; call once the stream has been read to its end. */
  result(): Inspection;
}

export function inspectStream(
  source: AsyncIterable<Uint8Array | string>,
  declared: string,
  policy: FormatPolicy,
): InspectedStream {
  const detector = new FormatDetector({ createTypes: policy.vmdkCreateTypes });
  let result: Inspection | undefined;
  async function* pieces(): AsyncGenerator<Uint8Array> {
    let watching = true;
    for await (const p of source) {
      const piece = typeof p === "string" ? Buffer.from(p) : p;
      detector.feed(piece);
      if (watching) {
        const early = judgeEarly(detector.sofar(), declared, policy);
        if (early.length > 0) throw new FormatRejectedError(early);
        watching = !detector.settled;
      }
      yield piece;
    }
  }
  return {
    pieces: pieces(),
    result() {
      if (!result) {
        const detection = detector.finish();
        result = { detection, violations: judge(detection, declared, policy) };
      }
      return result;
    },
  };
}

/**
 * Inspects a whole stream (a file, a converted image) and returns the verdict. With no
 * declared format the content is held to the rules of what it turns out to be: a file on disk
 * has no disk_format to contradict, and judging it as raw would call every qcow2 a raw-over-
 * formatted attack. A polyglot has no single format, but is refused as one whatever is declared.
 */
export async function inspectAll(
  source: AsyncIterable<Uint8Array | string>,
  declared: string | undefined,
  policy: FormatPolicy,
): Promise<Inspection> {
  const detector = new FormatDetector({ createTypes: policy.vmdkCreateTypes });
  for await (const p of source) detector.feed(typeof p === "string" ? Buffer.from(p) : p);
  const detection = detector.finish();
  return { detection, violations: judge(detection, declared ?? detection.format ?? "raw", policy) };
}
