import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";

export const BIN = new URL("../../dist/src/cli/main.js", import.meta.url).pathname;

export interface ChildServer {
  child: ChildProcess;
  url: string;
  exited: Promise<unknown>;
  /** SIGKILL, and wait for the process to be gone. */
  kill(): Promise<void>;
}

/**
 * The shipped server (dist/) in a child process on a loopback ephemeral port, over `dataDir`
 * with `config`: for killing it (SIGKILL) where a test needs a crash. Resolves once it listens.
 */
export async function startChildServer(
  dataDir: string,
  config: string,
  extra: string[] = [],
): Promise<ChildServer> {
  const child = spawn(
    process.execPath,
    [BIN, "serve", "--data", dataDir, "--port", "0", "--config", config, ...extra],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    // A server that never says it listens must not outlive the test.
    setTimeout(() => reject(new Error("the server did not start within 30 s")), 30_000).unref();
    lines.on("line", (line) => {
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        if (rec.msg === "tessera listening") resolve(rec.url as string);
      } catch {
        // not a log line
      }
    });
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  }).catch((e) => {
    child.kill("SIGKILL");
    throw e;
  });
  return {
    child,
    url,
    exited,
    kill: async () => {
      child.kill("SIGKILL");
      await exited;
    },
  };
}
