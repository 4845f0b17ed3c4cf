import { type ChildProcess, spawn } from "node:child_process";
import { readdir, readFile, readlink } from "node:fs/promises";
import { request } from "node:http";
import { createInterface } from "node:readline";
import { BIN } from "./child-server.js";

export type LogLine = Record<string, unknown>;

export interface ClusterServer {
  child: ChildProcess;
  url: string;
  /** Every log line so far, the primary's and the workers'. */
  logs: LogLine[];
  exited: Promise<number | string | null>;
}

/**
 * `tessera serve --workers N` as shipped (dist/), on a loopback ephemeral port, with `args` and
 * `env`; resolves once the primary says the node listens (every worker serves).
 */
export async function startCluster(
  dataDir: string,
  workers: number,
  { args = [], env = {} }: { args?: string[]; env?: Record<string, string> } = {},
): Promise<ClusterServer> {
  const child = spawn(
    process.execPath,
    [BIN, "serve", "--data", dataDir, "--port", "0", "--workers", String(workers), ...args],
    { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] },
  );
  const logs: LogLine[] = [];
  // The exit status, or the signal that ended it.
  const exited = new Promise<number | string | null>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal)),
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    setTimeout(() => reject(new Error("the server did not start within 60 s")), 60_000).unref();
    lines.on("line", (line) => {
      const rec = JSON.parse(line) as LogLine;
      logs.push(rec);
      if (rec.msg === "tessera listening") resolve(rec.url as string);
    });
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  }).catch((e) => {
    child.kill("SIGKILL");
    throw e;
  });
  return { child, url, logs, exited };
}

/** The pids of the workers the primary started, by worker number, the latest of each. */
export function workerPids(logs: LogLine[]): Map<number, number> {
  const pids = new Map<number, number>();
  for (const l of logs) if (l.msg === "worker started") pids.set(l.worker as number, l.pid as number);
  return pids;
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The pid of the worker that answered (x-tessera-worker). */
  worker: number;
  body: Buffer;
}

/**
 * One request on a connection of its own: the cluster hands out connections, not requests,
 * so a pooled keep-alive connection would always reach the same worker.
 */
export function call(
  url: string,
  {
    method = "GET",
    headers = {},
    body,
    localAddress,
  }: {
    method?: string;
    headers?: Record<string, string>;
    body?: Uint8Array;
    /** The address to call from (another loopback address, 127.0.0.2, is another client). */
    localAddress?: string;
  } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false, localAddress }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (p: Buffer) => parts.push(p));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          worker: Number(res.headers["x-tessera-worker"]),
          body: Buffer.concat(parts),
        }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    // A request that hangs fails here, naming its URL, not as the test's timeout.
    req.setTimeout(20_000, () => req.destroy(new Error(`${method} ${url}: no answer in 20 s`)));
    req.end(body);
  });
}

/** Whether process `pid` still runs. */
export function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Which of `pids` holds the server end of the loopback connection whose client end is on
 * `clientPort` (Linux: /proc/net/tcp gives the socket's inode, /proc/PID/fd who has it).
 */
export async function holderOf(clientPort: number, pids: number[]): Promise<number | undefined> {
  const port = `:${clientPort.toString(16).toUpperCase().padStart(4, "0")}`;
  const table = await readFile("/proc/net/tcp", "utf8");
  const row = table
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[2]?.endsWith(port) && f[2].startsWith("0100007F"));
  if (!row) return undefined;
  const socket = `socket:[${row[9]}]`;
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => []);
    for (const fd of fds) {
      if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "")) === socket) return pid;
    }
  }
  return undefined;
}
