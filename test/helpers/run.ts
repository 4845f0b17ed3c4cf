import { type SpawnOptions, spawn } from "node:child_process";

export interface RunResult {
  status: number;
  out: string;
  err: string;
}

/**
 * Runs a command without blocking this process (a server under test may live in it), stdin
 * closed, and collects its output.
 */
export function runAsync(cmd: string, args: string[], options: SpawnOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      err += d;
    });
    child.on("close", (code) => resolve({ status: code ?? -1, out, err }));
  });
}

/**
 * Runs every cleanup step in order, each whatever the others did, then throws the first error:
 * one step failing (a browser that will not close) must not leave the next one's server running.
 */
export async function cleanUp(...steps: (() => unknown)[]): Promise<void> {
  const errors: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length > 0) throw errors[0];
}
