/**
 * Where the server's JSON log lines go: standard output, without ever stalling the server.
 *
 * pino's default stdout destination writes synchronously and retries a full pipe forever, and
 * its asynchronous one blocks a libuv thread in write(), which then blocks the process's exit:
 * both froze a server whose log reader had gone away (seen here). When stdout is a pipe or a
 * socket, this opens it as a non-blocking Node socket instead; lines queue in memory up to a
 * bound and beyond it are dropped and counted. Files and terminals are written synchronously,
 * as they cannot stall for long.
 */
import { fstatSync, writeSync } from "node:fs";
import { Socket } from "node:net";

export interface LogDestination {
  write(line: string): void;
  /** Lines dropped because the reader was too slow or gone. */
  dropped(): number;
  /** Waits (at most `timeoutMs`) for queued lines to be written. */
  flush(timeoutMs: number): Promise<void>;
}

let shared: LogDestination | undefined;

/** The process's one stdout destination (one socket per fd: a second would close it twice). */
export function stdoutDestination(): LogDestination {
  shared ??= open(16 * 1024 * 1024);
  return shared;
}

function open(maxQueuedBytes: number): LogDestination {
  let dropped = 0;
  const st = fstatSync(1);
  if (!st.isFIFO() && !st.isSocket()) {
    return {
      write: (line) => {
        try {
          writeSync(1, line);
        } catch {
          dropped++;
        }
      },
      dropped: () => dropped,
      flush: async () => {},
    };
  }
  const out = new Socket({ fd: 1, readable: false, writable: true });
  let dead = false;
  out.on("error", () => {
    dead = true;
  });
  // The log must not keep a finished process alive.
  out.unref();
  return {
    write: (line) => {
      if (dead || out.writableLength > maxQueuedBytes) {
        dropped++;
        return;
      }
      out.write(line);
    },
    dropped: () => dropped,
    flush: (timeoutMs) =>
      new Promise<void>((resolve) => {
        if (dead || out.writableLength === 0) return resolve();
        const timer = setTimeout(done, timeoutMs);
        out.once("drain", done);
        function done() {
          clearTimeout(timer);
          out.off("drain", done);
          resolve();
        }
      }),
  };
}
