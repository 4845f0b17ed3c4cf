import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { type RunningServer, type ServerOptions, startServer } from "../../src/api/server.js";
import { DEFAULT_CONFIG } from "../../src/config/server-config.js";

export type TestServer = RunningServer & { dataDir: string };

/** A real Tessera HTTP server on 127.0.0.1 and an ephemeral port, over a temp data dir. */
export async function startTestServer(
  overrides: Partial<ServerOptions> = {},
  dataDir?: string,
): Promise<TestServer> {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), "tessera-api-")));
  const server = await startServer({
    ...DEFAULT_CONFIG,
    osHashNodeName: "sha512",
    dataDir: dir,
    port: 0,
    fsync: false,
    logLevel: "silent",
    ...overrides,
  });
  return { ...server, dataDir: dir };
}

/** One server for a whole test file, removed with its data after the file. */
export function sharedServer(overrides: Partial<ServerOptions> = {}): () => TestServer {
  let server: TestServer | undefined;
  beforeAll(async () => {
    server = await startTestServer(overrides);
  });
  afterAll(async () => {
    if (!server) return;
    await server.close();
    await rm(server.dataDir, { recursive: true, force: true });
  });
  return () => {
    if (!server) throw new Error("server not started");
    return server;
  };
}

/** A small Glance client over fetch, for tests. */
export function client(base: () => string) {
  const url = (p: string) => `${base()}${p}`;
  return {
    url,
    get: (p: string, headers: Record<string, string> = {}) => fetch(url(p), { headers }),
    createImage: async (body: Record<string, unknown>) => {
      const res = await fetch(url("/v2/images"), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      if (res.status !== 201) throw new Error(`create: ${res.status} ${await res.text()}`);
      return (await res.json()) as Record<string, unknown> & { id: string };
    },
    upload: (id: string, data: Uint8Array | string) =>
      fetch(url(`/v2/images/${id}/file`), {
        method: "PUT",
        headers: { "content-type": "application/octet-stream" },
        // A copy into a plain ArrayBuffer: fetch's types take no SharedArrayBuffer-backed views.
        body: typeof data === "string" ? data : new Uint8Array(data).buffer,
      }),
    patch: (id: string, ops: unknown, type = "application/openstack-images-v2.1-json-patch") =>
      fetch(url(`/v2/images/${id}`), {
        method: "PATCH",
        headers: { "content-type": type },
        body: JSON.stringify(ops),
      }),
    request: (method: string, p: string, init: RequestInit = {}) => fetch(url(p), { ...init, method }),
  };
}
