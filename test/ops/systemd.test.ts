/**
 * Running under systemd (contrib/systemd): the unit passes `systemd-analyze verify` and its
 * hardening scores as systemd's own review rates it, the sysusers entry makes the user, and
 * `tessera serve` speaks the notify protocol: READY=1 only once the node answers
 * /healthcheck (with two workers, once both listen), STOPPING=1 on SIGTERM. systemd is not PID
 * 1 here, so the notify socket is one Debian's python3 opens and prints from, as systemd would
 * read it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { BIN } from "../helpers/child-server.js";
import { freePort } from "../helpers/ports.js";
import { runAsync } from "../helpers/run.js";
import { haveTools } from "../helpers/tools.js";
import { waitFor } from "../helpers/wait.js";

const UNIT = new URL("../../contrib/systemd/tessera.service", import.meta.url).pathname;
const SYSUSERS = new URL("../../contrib/systemd/tessera.sysusers", import.meta.url).pathname;
const TOOLS = ["systemd-analyze", "systemd-sysusers", "systemd-notify", "python3"];
const present = haveTools(TOOLS, "apt-get install systemd python3");

/** Prints each datagram received on the socket at argv[1] as one JSON string line. */
const RECEIVER = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps("bound"), flush=True)
while True:
    print(json.dumps(s.recv(65536).decode()), flush=True)
`;

let dirs: string[] = [];
let children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  children = [];
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  dirs = [];
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "tessera-systemd-"));
  dirs.push(d);
  return d;
}

/** The unit in a temp dir, with ExecStart on this checkout's built CLI and this Node. */
async function unitHere(): Promise<string> {
  const dir = await tempDir();
  const text = (await readFile(UNIT, "utf8")).replace(
    /^ExecStart=.*$/m,
    `ExecStart=${process.execPath} ${BIN} serve --config /etc/tessera/tessera.json --data /var/lib/tessera`,
  );
  const path = join(dir, "tessera.service");
  await writeFile(path, text);
  return path;
}

/** The unit's [Service] settings, name → values in order. */
async function serviceSettings(): Promise<Map<string, string[]>> {
  const text = await readFile(UNIT, "utf8");
  const section = text.split(/^\[Service\]$/m)[1]?.split(/^\[/m)[0] ?? "";
  const settings = new Map<string, string[]>();
  for (const line of section.split("\n")) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) settings.set(m[1] as string, [...(settings.get(m[1] as string) ?? []), m[2] as string]);
  }
  return settings;
}

describe.runIf(present)("the systemd unit", () => {
  it("passes systemd-analyze verify without a warning", async () => {
    const unit = await unitHere();
    const r = await runAsync("systemd-analyze", ["verify", unit], { cwd: join(unit, "..") });
    // verify also loads the machine's own units and says what is wrong with them (Debian's
    // keystone.service orders itself after itself): only what it says of ours counts. An
    // unknown key is a warning with exit status 0, so the status alone would not do.
    const ours = r.err.split("\n").filter((l) => l.includes("tessera.service"));
    expect(ours).toEqual([]);
    expect(r.status, r.err).toBe(0);
  });

  it("runs as its own user, notifies, hardened as systemd's review rates it (exposure under 2)", async () => {
    const s = await serviceSettings();
    expect(s.get("Type")).toEqual(["notify"]);
    expect(s.get("NotifyAccess")).toEqual(["all"]);
    expect(s.get("User")).toEqual(["tessera"]);
    expect(s.get("KillMode")).toEqual(["mixed"]);
    expect(s.get("CapabilityBoundingSet")).toEqual([""]);
    expect(s.get("ProtectSystem")).toEqual(["strict"]);
    expect(s.get("StateDirectory")).toEqual(["tessera"]);
    for (const yes of ["NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices"]) {
      expect(s.get(yes), yes).toEqual(["yes"]);
    }
    expect(s.get("RestrictAddressFamilies")).toEqual(["AF_INET AF_INET6 AF_UNIX"]);
    expect(Number(s.get("LimitNOFILE")?.[0])).toBeGreaterThanOrEqual(65536);
    const unit = await unitHere();
    const r = await runAsync("systemd-analyze", ["security", "--offline=true", "--no-pager", unit], {
      cwd: join(unit, ".."),
    });
    const level = /Overall exposure level for tessera\.service: ([\d.]+)/.exec(r.out);
    expect(level, r.out + r.err).not.toBeNull();
    expect(Number(level?.[1])).toBeLessThan(2);
  });

  it("has a sysusers entry that makes the tessera user, home the data directory, no shell", async () => {
    const root = await tempDir();
    await mkdir(join(root, "etc"));
    const r = await runAsync("systemd-sysusers", [`--root=${root}`, SYSUSERS]);
    expect(r.status, r.err).toBe(0);
    const passwd = await readFile(join(root, "etc/passwd"), "utf8");
    expect(passwd).toMatch(/^tessera:x:\d+:\d+:[^:]*:\/var\/lib\/tessera:\/usr\/sbin\/nologin$/m);
    expect(await readFile(join(root, "etc/group"), "utf8")).toMatch(/^tessera:x:\d+:/m);
  });
});

/** A message on the notify socket; `healthcheck`: the status /healthcheck gave as READY=1 came. */
type Notice = { notify: string; healthcheck?: number };
type Event = { log: Record<string, unknown> } | Notice;
const isReady = (e: Event): e is Notice => "notify" in e && e.notify.split("\n").includes("READY=1");

/** The notify socket: python3 bound to it, each message an event. */
async function notifySocket(dir: string, events: Event[], onReady: (e: Notice) => Promise<void>) {
  const path = join(dir, "notify.sock");
  const py = spawn("/usr/bin/python3", ["-c", RECEIVER, path], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(py);
  let bound!: () => void;
  const isBound = new Promise<void>((r) => {
    bound = r;
  });
  createInterface({ input: py.stdout as NodeJS.ReadableStream }).on("line", (line) => {
    const text = JSON.parse(line) as string;
    if (text === "bound") return bound();
    const e: Notice = { notify: text };
    events.push(e);
    if (isReady(e)) void onReady(e);
  });
  await isBound;
  return path;
}

describe.runIf(present)("tessera serve under Type=notify", () => {
  for (const workers of [1, 2]) {
    it(`says READY=1 only once /healthcheck answers, STOPPING=1 on SIGTERM (workers: ${workers})`, async () => {
      const dir = await tempDir();
      const port = await freePort();
      const events: Event[] = [];
      const socket = await notifySocket(dir, events, async (e) => {
        // At once, as systemd would start what waits on the unit: the port must answer now.
        const res = await fetch(`http://127.0.0.1:${port}/healthcheck`).catch(() => undefined);
        e.healthcheck = res?.status ?? 0;
      });
      const args = [
        "serve",
        "--data",
        join(dir, "data"),
        "--port",
        String(port),
        "--workers",
        String(workers),
      ];
      const child = spawn(process.execPath, [BIN, ...args, "--no-fsync"], {
        env: { ...process.env, NOTIFY_SOCKET: socket },
        stdio: ["ignore", "pipe", "inherit"],
      });
      children.push(child);
      const exited = new Promise((r) => child.once("exit", (code, signal) => r(code ?? signal)));
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
        events.push({ log: JSON.parse(line) });
      });
      const ready = await waitFor("READY=1", () => events.find(isReady));
      await waitFor("the health check made on READY=1", () => ready.healthcheck !== undefined);
      expect(ready.healthcheck).toBe(200);
      // Every process of the node had said it listens before READY=1 came.
      const logsBefore = events.slice(0, events.indexOf(ready)).flatMap((e) => ("log" in e ? [e.log] : []));
      expect(logsBefore.filter((l) => l.msg === "worker listening").length).toBe(workers > 1 ? workers : 0);
      expect(logsBefore.some((l) => l.msg === "tessera listening")).toBe(true);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      await waitFor("STOPPING=1", () => events.some((e) => "notify" in e && e.notify.includes("STOPPING=1")));
      // Once: the workers do not speak for the service.
      expect(events.filter(isReady)).toHaveLength(1);
    });
  }
});
