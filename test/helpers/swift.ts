/**
 * A real single-node OpenStack Swift (Debian's) on 127.0.0.1 for the tests, started with
 * .ci/swift.sh in a temp directory on free ports: the native API with tempauth, and S3 through
 * its s3api middleware on the same port. Missing Swift skips on a user's machine, fails in CI.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, freePorts } from "./ports.js";
import { runAsync } from "./run.js";

const CI_DIR = new URL("../../.ci/", import.meta.url).pathname;

export const SWIFT_MISSING = !existsSync("/usr/bin/swift-proxy-server");
if (SWIFT_MISSING && process.env.CI) throw new Error("CI must have Swift (.ci/run installs it)");
if (SWIFT_MISSING) {
  console.warn(
    "skipping Swift tests: apt-get install swift swift-proxy swift-object swift-container swift-account memcached",
  );
}

export interface Swift {
  authUrl: string;
  user: string;
  key: string;
  /** S3 (s3api) on the same port, with the same credentials. */
  s3Endpoint: string;
  stop(): Promise<void>;
  /**
   * Switches the proxy from tempauth to Keystone (keystonemiddleware's authtoken and Swift's
   * keystoneauth, as an OpenStack cloud runs it), validating with the given service user. The
   * s3api middleware goes (with Keystone it would need s3token).
   */
  useKeystone(
    keystoneUrl: string,
    service: { username: string; password: string; project: string },
  ): Promise<void>;
  /** The Swift API's URL, for Keystone's catalog. */
  apiUrl: string;
  /** Stops the servers, keeping the data (start() brings them back). */
  halt(): Promise<void>;
  start(): Promise<void>;
}

/**
 * Runs .ci/swift.sh in a new directory on free ports. Swift must be given its ports (the rings
 * name them), so another process can take one between the check and Swift's bind: a first start
 * that fails is tried again, in a new directory on other ports.
 */
async function launch(): Promise<{ dir: string; port: number; env: NodeJS.ProcessEnv }> {
  for (let attempt = 1; ; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), "tessera-swift-"));
    const port = await freePort();
    // Backend ports: object, container, account and memcached (+10) from a free base.
    const base = await freePorts(11);
    const env = { ...process.env, SWIFT_PORT: String(port), SWIFT_BACKEND_PORT: String(base) };
    const r = await runAsync("bash", [join(CI_DIR, "swift.sh"), "start", dir], { env });
    if (r.status === 0) return { dir, port, env };
    await runAsync("bash", [join(CI_DIR, "swift.sh"), "stop", dir], { env });
    await rm(dir, { recursive: true, force: true });
    if (attempt === 2) throw new Error(`swift did not start: ${r.err}`);
  }
}

export async function startSwift(): Promise<Swift> {
  const { dir, port, env } = await launch();
  const start = async () => {
    const r = await runAsync("bash", [join(CI_DIR, "swift.sh"), "start", dir], { env });
    if (r.status !== 0) throw new Error(`swift did not start: ${r.err}`);
  };
  const halt = async () => {
    await runAsync("bash", [join(CI_DIR, "swift.sh"), "stop", dir], { env });
  };
  const useKeystone = async (url: string, svc: { username: string; password: string; project: string }) => {
    await halt();
    const conf = join(dir, "etc", "proxy-server.conf");
    const text = (await readFile(conf, "utf8")).replace(
      /^(pipeline = .*)\bs3api tempauth\b/m,
      "$1authtoken keystoneauth",
    );
    await writeFile(
      conf,
      `${text}
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = ${url}
auth_url = ${url}
auth_type = password
user_domain_id = default
project_domain_id = default
project_name = ${svc.project}
username = ${svc.username}
password = ${svc.password}
delay_auth_decision = True

[filter:keystoneauth]
use = egg:swift#keystoneauth
operator_roles = admin, member
`,
    );
    await start();
  };
  return {
    apiUrl: `http://127.0.0.1:${port}/v1`,
    useKeystone,
    authUrl: `http://127.0.0.1:${port}/auth/v1.0`,
    user: "test:tester",
    key: "testing",
    s3Endpoint: `http://127.0.0.1:${port}`,
    start,
    halt,
    stop: async () => {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
