/**
 * A real Glance (Zed, Debian's glance-api) of a test's own, started with .ci/glance-peer.sh on a
 * loopback ephemeral port over a temp directory, identity taken from the X-Project-Id and
 * X-Roles headers, or from Keystone tokens (its authtoken middleware validating them with a
 * service user's); and a small client acting as any project.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.js";
import { runAsync } from "./run.js";

const ROOT = new URL("../..", import.meta.url).pathname;

/**
 * Whether Debian's glance-api is installed. Off CI its absence skips, saying what to install;
 * in CI (.ci/run installs it) it fails.
 */
export function haveGlanceApi(): boolean {
  if (existsSync("/usr/bin/glance-api")) return true;
  const message = "Debian's glance-api is not installed (apt-get install glance-api)";
  if (process.env.CI) throw new Error(`CI must have the real Glance: ${message}`);
  console.warn(`skipping: ${message}`);
  return false;
}

export interface GlancePeer {
  url: string;
  dir: string;
  /** A request as `project` with `roles` (default: an admin of project "admin"). */
  request(
    method: string,
    path: string,
    options?: { project?: string; roles?: string; token?: string; json?: unknown; body?: Buffer },
  ): Promise<Response>;
  stop(): Promise<void>;
}

/** Keystone (its v3 URL) and the service user Glance validates tokens with. */
export interface GlanceKeystone {
  url: string;
  user: string;
  password: string;
  project: string;
}

export async function startGlancePeer(keystone?: GlanceKeystone): Promise<GlancePeer> {
  const dir = await mkdtemp(join(tmpdir(), "tessera-glance-peer-"));
  const port = await freePort();
  const started = await runAsync("bash", [join(ROOT, ".ci/glance-peer.sh"), String(port), dir], {
    env: {
      ...process.env,
      GLANCE_PEER_NO_INSTALL: "1",
      ...(keystone
        ? {
            GLANCE_PEER_AUTH: "keystone",
            GLANCE_PEER_KEYSTONE_URL: keystone.url,
            GLANCE_PEER_KEYSTONE_USER: keystone.user,
            GLANCE_PEER_KEYSTONE_PASSWORD: keystone.password,
            GLANCE_PEER_KEYSTONE_PROJECT: keystone.project,
          }
        : { GLANCE_PEER_AUTH: "headers" }),
    },
  });
  const url = started.out.trim().split("\n").pop() ?? "";
  const stop = async () => {
    await runAsync("bash", [join(ROOT, ".ci/glance-peer-stop.sh"), dir]);
    await rm(dir, { recursive: true, force: true });
  };
  if (started.status !== 0 || !url.startsWith("http")) {
    await stop();
    throw new Error(`Glance did not start: ${started.err.slice(-2000)}`);
  }
  return {
    url,
    dir,
    stop,
    request: (method, path, o = {}) => {
      const headers: Record<string, string> = o.token
        ? { "X-Auth-Token": o.token }
        : { "X-Project-Id": o.project ?? "admin", "X-Roles": o.roles ?? "admin,member,reader" };
      let body: BodyInit | undefined;
      if (o.json !== undefined) {
        headers["Content-Type"] =
          method === "PATCH" ? "application/openstack-images-v2.1-json-patch" : "application/json";
        body = JSON.stringify(o.json);
      } else if (o.body) {
        headers["Content-Type"] = "application/octet-stream";
        body = Buffer.from(o.body);
      }
      return fetch(`${url}${path}`, { method, headers, body });
    },
  };
}
