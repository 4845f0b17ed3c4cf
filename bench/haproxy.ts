/**
 * Debian's HAProxy in front of several servers, for the cluster benchmark and the cluster
 * tests (test/helpers/haproxy.ts picks the port and re-exports the rest), and on any other
 * configuration (`runHaproxy`: test/ops/haproxy-tls.test.ts runs docs/operations.md's): its configuration in
 * a temp directory, round robin over the backends with a health check on a path they answer
 * cheaply, in the foreground (`haproxy -f FILE -db`) as a child process stopped by its pid.
 * Each answer names the backend that gave it (`X-Served-By: nN`), so a caller can see the
 * traffic spread. Start it once the backends answer: its first checks would otherwise mark them
 * down for a few seconds.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const HAPROXY = "/usr/sbin/haproxy";

export function haveHaproxy(): boolean {
  return existsSync(HAPROXY);
}

export interface Haproxy {
  url: string;
  pid: number;
  /** What HAProxy wrote to stderr so far (warnings, backends going down and up). */
  log(): string;
  /** SIGTERM by pid, then SIGKILL if it lingers; removes its directory. */
  stop(): Promise<void>;
}

export interface HaproxyOptions {
  /** The backends' base URLs (http://127.0.0.1:PORT). */
  backends: string[];
  /** The health check's request path (GET); answered 200 by a healthy backend. */
  checkPath: string;
  /** Seconds a request may wait for its backend's answer (uploads, collections). */
  serverTimeoutSeconds?: number;
}

export function haproxyConfig(port: number, o: HaproxyOptions): string {
  const timeout = o.serverTimeoutSeconds ?? 120;
  return [
    "global",
    "  maxconn 512",
    "defaults",
    "  mode http",
    "  timeout connect 5s",
    `  timeout client ${timeout}s`,
    `  timeout server ${timeout}s`,
    "  timeout http-request 30s",
    "frontend images",
    `  bind 127.0.0.1:${port}`,
    "  default_backend tessera",
    "backend tessera",
    "  balance roundrobin",
    `  option httpchk GET ${o.checkPath}`,
    "  http-check expect status 200",
    "  http-response set-header X-Served-By %[srv_name]",
    ...o.backends.map((b, i) => {
      const u = new URL(b);
      return `  server n${i + 1} ${u.hostname}:${u.port} check inter 1s fall 2 rise 1`;
    }),
    "",
  ].join("\n");
}

/** A running HAProxy of any configuration: its pid, what it wrote, and its stop. */
export type HaproxyProcess = Omit<Haproxy, "url"> & { exitCode(): number | null };

/**
 * HAProxy in the foreground on configuration `config` (its text), from a temp directory that
 * `stop` removes. Resolves at once: the caller waits for what it needs to answer.
 */
export async function runHaproxy(config: string): Promise<HaproxyProcess> {
  const dir = await mkdtemp(join(tmpdir(), "tessera-haproxy-"));
  const file = join(dir, "haproxy.cfg");
  await writeFile(file, config);
  const child: ChildProcess = spawn(HAPROXY, ["-f", file, "-db"], { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    log += d;
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    log += d;
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  const pid = child.pid as number;
  const stop = async () => {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // already gone
    }
    const late = setTimeout(() => {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }, 5_000);
    await exited;
    clearTimeout(late);
    await rm(dir, { recursive: true, force: true });
  };
  return { pid, log: () => log, stop, exitCode: () => child.exitCode };
}

/**
 * Starts HAProxy on 127.0.0.1:`port` (the caller's choice: the tests take theirs below the
 * ephemeral range) and resolves once every backend has answered a request through it.
 */
export async function startHaproxyOn(port: number, o: HaproxyOptions): Promise<Haproxy> {
  const { pid, log, stop, exitCode } = await runHaproxy(haproxyConfig(port, o));
  const url = `http://127.0.0.1:${port}`;
  try {
    const seen = new Set<string>();
    const deadline = Date.now() + 20_000;
    while (seen.size < o.backends.length) {
      if (exitCode() !== null) throw new Error(`haproxy exited with ${exitCode()}: ${log()}`);
      if (Date.now() > deadline) throw new Error(`haproxy: backends seen ${[...seen]} after 20 s: ${log()}`);
      const res = await fetch(`${url}${o.checkPath}`).catch(() => undefined);
      const by = res?.headers.get("x-served-by");
      await res?.arrayBuffer();
      if (res?.status === 200 && by) seen.add(by);
      else await new Promise((r) => setTimeout(r, 100));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, pid, log, stop };
}
