/** A server with static tokens for the metadefs tests: an admin, two members, a reader-less caller. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { startTestServer, type TestServer } from "./server.js";
import { withToken, writeTokens } from "./tenants.js";

export const METADEF_TENANTS = {
  admin: { project: "ops", user: "root", roles: ["admin"] },
  alice: { project: "alpha", user: "alice", roles: ["member"] },
  bob: { project: "beta", user: "bob", roles: ["member"] },
  guest: { project: "gamma", user: "guest", roles: ["observer"] },
};

export type Who = keyof typeof METADEF_TENANTS;
export type Call = (method: string, path: string, body?: unknown) => Promise<Response>;

/** One tokens-mode server for the file; `as(who)` calls it with that tenant's token. */
export function metadefServer(): { as: (who: Who) => Call; server: () => TestServer } {
  let dir: string | undefined;
  let s: TestServer | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tessera-metadefs-"));
    const file = await writeTokens(dir, METADEF_TENANTS);
    s = await startTestServer({ auth: { mode: "tokens", tokensFile: file }, gcIntervalSeconds: 0 });
  });
  afterAll(async () => {
    await s?.close();
    if (s) await rm(s.dataDir, { recursive: true, force: true });
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const server = () => {
    if (!s) throw new Error("server not started");
    return s;
  };
  return { as: (who) => withToken(() => server().url, `${who}-token`), server };
}

/** The JSON of a response after checking its status (the body in the failure message). */
export async function expectJson(res: Response, status: number): Promise<Record<string, unknown>> {
  const text = await res.text();
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${text}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

/** The message of a Glance-shaped JSON error, after checking its status. */
export async function errorOf(res: Response, status: number): Promise<string> {
  const body = (await expectJson(res, status)) as { message?: string };
  return body.message ?? "";
}
