/**
 * `npm run bench:auth`: what Keystone token validation adds to a request once cached. A real
 * Keystone (.ci/keystone.sh) and two Tessera servers in the same run: one without auth, one in
 * keystone mode; the same image shown (GET /v2/images/{id}) `--requests` times in a row over
 * keep-alive, in interleaved rounds. Also: the first, uncached request of a new token, and the
 * cached lookup alone against a bare sha256 of the token (the reference it is built on).
 *
 *   --requests N  per round and server, default 2000
 *   --rounds N    default 5
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import type { RunningServer, ServerOptions } from "../src/api/server.js";
import type { KeystoneAuth } from "../src/auth/keystone.js";
import { passwordToken } from "../src/keystone-password.js";
import { benchServer, freePort, log, median } from "./common.js";

const { values: opt } = parseArgs({
  options: {
    requests: { type: "string", default: "2000" },
    rounds: { type: "string", default: "5" },
  },
});
const N = Number(opt.requests);
const ROUNDS = Number(opt.rounds);
const CI_DIR = new URL("../../.ci/", import.meta.url).pathname;
const run = promisify(execFile);

async function token(url: string, username: string, password: string, projectName: string): Promise<string> {
  const { answer, token } = await passwordToken(
    fetch,
    url,
    { username, password, projectName },
    { catalog: false },
  );
  if (!token) throw new Error(`token: ${answer.status}`);
  return token;
}

/** Seconds per request for `n` sequential GETs of `path`. */
async function perRequest(
  url: string,
  path: string,
  headers: Record<string, string>,
  n: number,
): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${url}${path}`, { headers });
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
    await res.arrayBuffer();
  }
  return Number(process.hrtime.bigint() - t0) / 1e9 / n;
}

async function main(): Promise<void> {
  const ksDir = await mkdtemp(join(tmpdir(), "tessera-bench-keystone-"));
  const port = await freePort();
  await run("bash", [join(CI_DIR, "keystone.sh"), ksDir], {
    env: { ...process.env, KEYSTONE_PORT: String(port) },
  }).catch((e) => {
    throw new Error(
      `keystone did not start (apt-get install keystone uwsgi uwsgi-plugin-python3): ${e.stderr ?? e}`,
    );
  });
  const ksUrl = `http://127.0.0.1:${port}/v3`;
  const stops: (() => Promise<void>)[] = [];
  const start = async (auth: ServerOptions["auth"]) => {
    const { server, stop } = await benchServer({ fsync: false, auth });
    stops.push(stop);
    return server;
  };
  try {
    const plain = await start({ mode: "none" });
    const keystone = await start({
      mode: "keystone",
      keystone: { url: ksUrl, username: "svc", password: "svc-pass", projectName: "service" },
    });
    const demo = await token(ksUrl, "demo", "demo-pass", "demo");
    const headers = { "X-Auth-Token": demo, Accept: "application/json" };
    const made = async (s: RunningServer) => {
      const res = await fetch(`${s.url}/v2/images`, {
        method: "POST",
        headers: { ...headers, "Content-Type": "application/json" },
        body: JSON.stringify({ name: "bench", disk_format: "raw", container_format: "bare" }),
      });
      return ((await res.json()) as { id: string }).id;
    };
    const first = process.hrtime.bigint();
    const kImage = await made(keystone); // the token's first, uncached validation
    const firstMs = Number(process.hrtime.bigint() - first) / 1e6;
    const pImage = await made(plain);
    const none: number[] = [];
    const cached: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      none.push(await perRequest(plain.url, `/v2/images/${pImage}`, headers, N));
      cached.push(await perRequest(keystone.url, `/v2/images/${kImage}`, headers, N));
      log(
        `round ${r + 1}: none ${(none[r] as number) * 1e6} µs, keystone ${(cached[r] as number) * 1e6} µs per request`,
      );
    }
    const auth = keystone.auth as KeystoneAuth;
    // The cached lookup alone, against the sha256 of the token it starts with.
    const M = 200_000;
    const req = {
      header: (n: string) => (n === "x-auth-token" ? demo : undefined),
      remoteAddress: "127.0.0.1",
    };
    let t0 = process.hrtime.bigint();
    for (let i = 0; i < M; i++) await auth.authenticate(req);
    const lookupNs = Number(process.hrtime.bigint() - t0) / M;
    t0 = process.hrtime.bigint();
    for (let i = 0; i < M; i++) createHash("sha256").update(demo).digest("hex");
    const shaNs = Number(process.hrtime.bigint() - t0) / M;
    const noneUs = median(none) * 1e6;
    const keystoneUs = median(cached) * 1e6;
    process.stdout.write(
      `${JSON.stringify({
        requests: N,
        rounds: ROUNDS,
        noneUsPerRequest: Math.round(noneUs),
        keystoneCachedUsPerRequest: Math.round(keystoneUs),
        addedUsPerRequest: Math.round(keystoneUs - noneUs),
        keystoneCallsDuringRounds: auth.validations,
        firstUncachedRequestMs: Math.round(firstMs),
        cachedLookupNs: Math.round(lookupNs),
        sha256OfTokenNs: Math.round(shaNs),
        lookupOverSha256: Math.round((lookupNs / shaNs) * 100) / 100,
      })}\n`,
    );
  } finally {
    for (const stop of stops) await stop();
    await run("bash", [join(CI_DIR, "keystone-stop.sh"), ksDir]).catch(() => {});
    await rm(ksDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
