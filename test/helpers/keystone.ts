/**
 * A real Keystone (Debian's, Zed) on 127.0.0.1 for the auth tests, started with
 * .ci/keystone.sh in a temp directory, plus the projects and users the tests act as. Missing
 * Keystone skips the tests on a user's machine and fails them in CI.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AuthConfig } from "../../src/auth/open-auth.js";
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

/** Tessera's `auth` in keystone mode, validating tokens as the service user svc, with `extra` keys. */
export function serviceAuth(ks: Keystone, extra: Record<string, unknown> = {}): AuthConfig {
  return {
    mode: "keystone",
    keystone: {
      url: ks.url,
      username: PEOPLE.svc.user,
      password: PEOPLE.svc.password,
      projectName: PEOPLE.svc.project,
      ...extra,
    },
  } as AuthConfig;
}

export interface Keystone {
  url: string;
  /** A project-scoped token for `who`, and the token's body. */
  token(who: Identity): Promise<{ token: string; projectId: string; expiresAt: string }>;
  /** Calls Keystone's API as the cloud admin. */
  admin(method: string, path: string, body?: unknown): Promise<Response>;
  /** Any call to Keystone's API (`path` under /v3), on a connection of its own, retried when dropped or 5xx. */
  request(path: string, init?: RequestInit): Promise<Response>;
  projectId(name: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Why no connection to Keystone is ever used twice here: uwsgi's --http-socket, as
 * .ci/keystone.sh runs it, answers HTTP/1.1 with a Content-Length and without `Connection:
 * close`, and then closes the connection anyway. A client that keeps the connection alive (fetch,
 * Node's http agent, python-requests in the openstack CLI and in Swift's authtoken middleware)
 * may send its next request on it before the close reaches it, and that request fails with
 * ECONNRESET or "other side closed" (UND_ERR_SOCKET). How often depends only on scheduling: on
 * a loaded machine up to 1% of fetches and 12% of python-requests calls (measured with Keystone
 * and the client on one CPU), so `npm test` on a fresh clone failed now and then.
 *
 * So: (1) uwsgi is told to say `Connection: close` on every response (UWSGI_ADD_HEADER, the
 * environment form of its --add-header), which every client obeys by never reusing the
 * connection: this is what makes the openstack CLI, Swift and Tessera itself safe in these
 * tests; (2) this helper's own requests say `Connection: close` too (undici then closes the
 * socket after the response), in case (1) is ever lost; (3) a request that still meets a
 * dropped connection (a uwsgi worker restarting, say) is retried, as a 5xx is. Repeating is
 * harmless for the calls made here: a login gives another token, GET, PUT and DELETE are
 * idempotent, a create of something named that had in fact gone through answers 409
 * (getOrCreate then finds it), and a service or endpoint made twice names the same URL.
 */
const UWSGI_ENV = { UWSGI_ADD_HEADER: "Connection: close" };

/** Attempts per request: a busy (5xx) or dropped answer is retried, 200 ms, 400 ms, ... apart. */
const ATTEMPTS = 5;

/** A fetch that failed without an answer: the connection refused, reset or closed under it. */
function dropped(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const text = `${e.message} ${cause?.code ?? ""} ${cause?.message ?? ""}`;
  return /fetch failed|ECONNRESET|ECONNREFUSED|EPIPE|UND_ERR_SOCKET|other side closed/.test(text);
}

/**
 * Runs .ci/keystone.sh in a new directory on a free port. uwsgi must be given its port (the
 * catalog names it), so another process can take the port between freePort() and uwsgi's
 * bind: a start that fails is tried again, on another port.
 */
async function launch(): Promise<{ dir: string; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), "tessera-keystone-"));
    const port = await freePort();
    const started = await runAsync("bash", [join(CI_DIR, "keystone.sh"), dir], {
      env: { ...process.env, ...UWSGI_ENV, KEYSTONE_PORT: String(port), KEYSTONE_WORKERS: "1" },
    });
    if (started.status === 0) return { dir, port };
    const uwsgiLog = await readFile(join(dir, "log", "uwsgi.log"), "utf8").catch(() => "");
    await runAsync("bash", [join(CI_DIR, "keystone-stop.sh"), dir]);
    await rm(dir, { recursive: true, force: true });
    if (attempt === 2) {
      throw new Error(`keystone did not start: ${started.err}\nuwsgi.log:\n${uwsgiLog.slice(-3000)}`);
    }
  }
}

export async function startKeystone(): Promise<Keystone> {
  const { dir, port } = await launch();
  const url = `http://127.0.0.1:${port}/v3`;

  /** One call to Keystone on a connection of its own; a dropped connection or a 5xx is asked again. */
  async function request(path: string, init: RequestInit = {}): Promise<Response> {
    for (let attempt = 1; ; attempt++) {
      const headers = new Headers(init.headers);
      headers.set("Connection", "close");
      try {
        const res = await fetch(`${url}${path}`, { ...init, headers });
        if (res.status < 500 || attempt === ATTEMPTS) return res;
        await res.body?.cancel();
      } catch (e) {
        if (attempt === ATTEMPTS || !dropped(e)) throw e;
      }
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }

  async function token(who: Identity) {
    // Asking again is harmless: Keystone issues another token.
    const res = await request("/auth/tokens?nocatalog", {
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
  /** Keystone's API as the cloud admin; a stale admin token (401) is replaced once. */
  async function admin(method: string, path: string, body?: unknown): Promise<Response> {
    for (let attempt = 1; ; attempt++) {
      adminToken ??= (await token(PEOPLE.admin)).token;
      const res = await request(path, {
        method,
        headers: { "X-Auth-Token": adminToken, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (res.status !== 401 || attempt === 2) return res;
      await res.body?.cancel();
      adminToken = undefined;
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
    if (res.status !== 201) {
      const text = await res.text();
      const made = res.status === 409 ? await find(kind, name) : undefined;
      if (made) return made;
      throw new Error(`create ${kind} ${name}: ${res.status} ${text}`);
    }
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
    request,
    projectId: async (name) => (await find("project", name)) as string,
    stop: async () => {
      await runAsync("bash", [join(CI_DIR, "keystone-stop.sh"), dir]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
