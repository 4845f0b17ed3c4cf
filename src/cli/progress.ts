/**
 * Progress of long CLI work on standard error (standard output carries the result): a bar on a
 * terminal (cli-progress), plain lines every few seconds otherwise, so logs of scripted runs
 * still show it moving.
 */
import { Presets, SingleBar } from "cli-progress";

export interface Progress {
  /** `done` of `total` (bytes or items), under `label` (which may change between phases). */
  update(label: string, done: number, total: number): void;
  stop(): void;
}

const PLAIN_EVERY_MS = 2000;

export function progress(unit: "bytes" | "items", stream: NodeJS.WriteStream = process.stderr): Progress {
  const show = (n: number) => (unit === "bytes" ? `${(n / 1e6).toFixed(1)} MB` : String(n));
  if (stream.isTTY) {
    let bar: SingleBar | undefined;
    let shown = "";
    return {
      update(label, done, total) {
        if (!bar || label !== shown) {
          bar?.stop();
          shown = label;
          bar = new SingleBar(
            {
              stream,
              format: `${label} [{bar}] {percentage}% {shown}`,
              hideCursor: true,
              clearOnComplete: false,
            },
            Presets.shades_classic,
          );
          bar.start(Math.max(total, 1), 0, { shown: "" });
        }
        bar.setTotal(Math.max(total, 1));
        bar.update(done, { shown: `${show(done)} of ${show(total)}` });
      },
      stop: () => bar?.stop(),
    };
  }
  let last = 0;
  let lastLabel = "";
  return {
    update(label, done, total) {
      const now = Date.now();
      if (label === lastLabel && now - last < PLAIN_EVERY_MS && done < total) return;
      last = now;
      lastLabel = label;
      const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
      stream.write(`${label}: ${pct}% (${show(done)} of ${show(total)})\n`);
    },
    stop: () => {},
  };
}
