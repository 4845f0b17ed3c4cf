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
