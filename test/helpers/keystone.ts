/**
 * A real Keystone (Debian's, Zed) on 127.0.0.1 for the auth tests, started with
 * .ci/keystone.sh in a temp directory, plus the projects and users the tests act as. Missing
 * Keystone skips the tests on a user's machine and fails them in CI.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.js";
import { runAsync } from "./run.js";

const CI_DIR = new URL("../../.ci/", import.meta.url).pathname;

export const KEYSTONE_MISSING = !existsSync("/usr/bin/keystone-manage") || !existsSync("/usr/bin/uwsgi");
if (KEYSTONE_MISSING && process.env.CI) {
  throw new Error("CI must have Keystone (.ci/run installs keystone, uwsgi, uwsgi-plugin-python3)");
}
if (KEYSTONE_MISSING) {
  console.warn(
    "skipping Keystone tests: keystone-manage or uwsgi missing (apt-get install keystone uwsgi uwsgi-plugin-python3)",
  );
}

export interface Identity {
  user: string;
  password: string;
  project: string;
}

/** The people the tests act as (the start script makes svc and demo; the rest are added). */
export const PEOPLE = {
  admin: { user: "admin", password: "admin-pass", project: "admin" },
  svc: { user: "svc", password: "svc-pass", project: "service" },
  demo: { user: "demo", password: "demo-pass", project: "demo" },
  demoReader: { user: "demo-reader", password: "reader-pass", project: "demo" },
  beta: { user: "beta-member", password: "beta-pass", project: "beta" },
} satisfies Record<string, Identity>;

export interface Keystone {
  url: string;
  /** A project-scoped token for `who`, and the token's body. */
  token(who: Identity): Promise<{ token: string; projectId: string; expiresAt: string }>;
  /** Calls Keystone's API as the cloud admin. */
  admin(method: string, path: string, body?: unknown): Promise<Response>;
  projectId(name: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startKeystone(): Promise<Keystone> {
  const dir = await mkdtemp(join(tmpdir(), "tessera-keystone-"));
  const port = await freePort();
  const started = await runAsync("bash", [join(CI_DIR, "keystone.sh"), dir], {
    env: { ...process.env, KEYSTONE_PORT: String(port), KEYSTONE_WORKERS: "1" },
  });
  if (started.status !== 0) throw new Error(`keystone did not start: ${started.err}`);
  const url = `http://127.0.0.1:${port}/v3`;

  async function token(who: Identity) {
    const res = await fetch(`${url}/auth/tokens?nocatalog`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        auth: {
          identity: {
            methods: ["password"],
            password: { user: { name: who.user, domain: { id: "default" }, password: who.password } },
          },
          scope: { project: { name: who.project, domain: { id: "default" } } },
        },
      }),
    });
    if (res.status !== 201) throw new Error(`token for ${who.user}: ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { token: { project: { id: string }; expires_at: string } };
    return {
      token: res.headers.get("x-subject-token") as string,
      projectId: body.token.project.id,
      expiresAt: body.token.expires_at,
    };
  }

  let adminToken: string | undefined;
  /** Keystone's API as the cloud admin; a busy Keystone (5xx) or a stale token (401) is retried. */
  async function admin(method: string, path: string, body?: unknown): Promise<Response> {
    for (let attempt = 1; ; attempt++) {
      adminToken ??= (await token(PEOPLE.admin)).token;
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { "X-Auth-Token": adminToken, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (attempt === 3 || (res.status !== 401 && res.status < 500)) return res;
      await res.body?.cancel();
      if (res.status === 401) adminToken = undefined;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
  async function find(kind: string, name: string): Promise<string | undefined> {
    const res = await admin("GET", `/${kind}s?name=${encodeURIComponent(name)}`);
    const list = ((await res.json()) as Record<string, { id: string }[]>)[`${kind}s`] ?? [];
    return list[0]?.id;
  }
  async function getOrCreate(kind: string, name: string, body: Record<string, unknown>): Promise<string> {
    const found = await find(kind, name);
    if (found) return found;
    const res = await admin("POST", `/${kind}s`, { [kind]: { name, ...body } });
    if (res.status !== 201) throw new Error(`create ${kind} ${name}: ${res.status} ${await res.text()}`);
    return ((await res.json()) as Record<string, { id: string }>)[kind]?.id as string;
  }
  async function grant(who: Identity, role: string): Promise<void> {
    const project = await getOrCreate("project", who.project, { domain_id: "default" });
    const user = await getOrCreate("user", who.user, {
      domain_id: "default",
      password: who.password,
      default_project_id: project,
    });
    const roleId = await getOrCreate("role", role, {});
    const res = await admin("PUT", `/projects/${project}/users/${user}/roles/${roleId}`);
    if (res.status !== 204) throw new Error(`grant ${role} to ${who.user}: ${res.status}`);
  }
  await grant(PEOPLE.demoReader, "reader");
  await grant(PEOPLE.beta, "member");

  return {
    url,
    token,
    admin,
    projectId: async (name) => (await find("project", name)) as string,
    stop: async () => {
      await runAsync("bash", [join(CI_DIR, "keystone-stop.sh"), dir]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
