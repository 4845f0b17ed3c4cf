/**
 * The HAProxy example of docs/operations.md ("Behind a proxy"), as written there but for its
 * addresses and certificate: TLS terminated by Debian's HAProxy in front of a Tessera that
 * believes X-Forwarded-* from it alone. HAProxy connects from 127.0.0.2 (`source`), the
 * client from 127.0.0.3, so that the proxy, the client and a direct caller are three peers.
 */

import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HAPROXY, type HaproxyProcess, runHaproxy } from "../../bench/haproxy.js";
import { type RunningServer, startServer } from "../../src/api/server.js";
import { DEFAULT_CONFIG } from "../../src/config/server-config.js";
import { call, type LogLine } from "../helpers/cluster-server.js";
import { prng } from "../helpers/data.js";
import { freePort } from "../helpers/ports.js";
import { runAsync } from "../helpers/run.js";
import { haveTools } from "../helpers/tools.js";
import { waitFor } from "../helpers/wait.js";

const DOC = new URL("../../docs/operations.md", import.meta.url).pathname;
const PROXY = "127.0.0.2";
const CLIENT = "127.0.0.3";
const HOST = "images.example.test";
const present = haveTools([HAPROXY, "openssl"], "apt-get install haproxy openssl");

/** The documented haproxy.cfg, bound here, with this certificate and this one node. */
async function documentedConfig(port: number, pem: string, node: string): Promise<string> {
  const doc = await readFile(DOC, "utf8");
  const block = /```\n(frontend images\n[\s\S]*?)```/.exec(doc)?.[1];
  if (!block)
    throw new Error("docs/operations.md has no haproxy.cfg example starting with `frontend images`");
  const { hostname, port: nodePort } = new URL(node);
  const bound = block.replace(/^(\s*bind) :443 ssl crt \S+$/m, `$1 127.0.0.1:${port} ssl crt ${pem}`);
  expect(bound).not.toBe(block);
  const lines = bound.split("\n").filter((l) => !/^\s*server /.test(l));
  lines.splice(
    lines.length - 1,
    0,
    `    server node1 ${hostname}:${nodePort} check inter 1s source ${PROXY}`,
  );
  return lines.join("\n");
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

let dir: string;
let ca: Buffer;
let server: RunningServer;
let haproxy: HaproxyProcess;
let url: string;
const logs: LogLine[] = [];

/** A request over TLS through HAProxy, from the client's address, for https://HOST. */
function https(
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
) {
  return new Promise<Answer>((resolve, reject) => {
    const req = request(
      `${url}${path}`,
      {
        method: init.method ?? "GET",
        ca,
        localAddress: CLIENT,
        headers: { host: HOST, ...init.headers },
        agent: false,
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (p: Buffer) => parts.push(p));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(init.body);
  });
}

describe.runIf(present)("TLS at HAProxy, as docs/operations.md configures it", () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tessera-tls-"));
    const key = join(dir, "key.pem");
    const cert = join(dir, "cert.pem");
    const made = await runAsync("openssl", [
      ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", key, "-out", cert],
      ...["-subj", `/CN=${HOST}`, "-addext", `subjectAltName=DNS:${HOST},IP:127.0.0.1`],
    ]);
    expect(made.status, made.err).toBe(0);
    ca = await readFile(cert);
    const pem = join(dir, "haproxy.pem");
    await writeFile(pem, Buffer.concat([ca, await readFile(key)]));
    const logger = pino({ level: "info" }, { write: (l: string) => logs.push(JSON.parse(l)) });
    server = await startServer(
      {
        ...DEFAULT_CONFIG,
        dataDir: join(dir, "data"),
        port: 0,
        fsync: false,
        osHashNodeName: "sha512",
        proxyHeadersFrom: [PROXY],
      },
      logger,
    );
    const port = await freePort();
    url = `https://127.0.0.1:${port}`;
    haproxy = await runHaproxy(await documentedConfig(port, pem, server.url));
    await waitFor("HAProxy to find the node healthy", async () => {
      if (haproxy.exitCode() !== null) throw new Error(`haproxy exited: ${haproxy.log()}`);
      return (await https("/healthcheck").catch(() => undefined))?.status === 200;
    });
  }, 60_000);
  afterAll(async () => {
    await haproxy?.stop();
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("gives https links at the host the client asked, whatever the client forwards itself", async () => {
    // What a client writes itself: HAProxy sets Proto and Host, and appends to For.
    const forged = {
      "x-forwarded-proto": "http",
      "x-forwarded-host": "evil.example",
      "x-forwarded-for": "6.6.6.6",
    };
    const versions = await https("/versions", { headers: forged });
    expect(versions.status).toBe(200);
    const hrefs = (JSON.parse(versions.body.toString()) as { versions: { links: { href: string }[] }[] })
      .versions;
    expect(new Set(hrefs.flatMap((v) => v.links.map((l) => l.href)))).toEqual(
      new Set([`https://${HOST}/v2/`]),
    );
    const created = await https("/v2/images", {
      method: "POST",
      headers: { ...forged, "content-type": "application/json" },
      body: Buffer.from(JSON.stringify({ name: "tls", disk_format: "raw", container_format: "bare" })),
    });
    expect(created.status).toBe(201);
    const id = (JSON.parse(created.body.toString()) as { id: string }).id;
    expect(created.headers.location).toBe(`https://${HOST}/v2/images/${id}`);
    await waitFor("the request lines", () => logs.filter((l) => l.path !== undefined).length >= 3);
    const lines = logs.filter((l) => l.path === "/versions" || l.path === "/v2/images");
    for (const l of lines) expect(l.remote).toBe(CLIENT);
  });

  it("carries an upload and its download through TLS", async () => {
    const created = await https("/v2/images", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: Buffer.from(JSON.stringify({ name: "tls-data", disk_format: "raw", container_format: "bare" })),
    });
    const id = (JSON.parse(created.body.toString()) as { id: string }).id;
    const data = Buffer.from(prng(11, 3 * 1024 * 1024 + 5));
    const put = await https(`/v2/images/${id}/file`, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream" },
      body: data,
    });
    expect(put.status).toBe(204);
    const got = await https(`/v2/images/${id}/file`);
    expect(got.status).toBe(200);
    expect(got.body.equals(data)).toBe(true);
  });

  it("ignores the same headers sent straight to the node", async () => {
    const direct = await call(`${server.url}/versions`, {
      localAddress: CLIENT,
      headers: { "x-forwarded-proto": "https", "x-forwarded-host": HOST },
    });
    const host = new URL(server.url).host;
    expect(direct.body.toString()).toContain(`"href":"http://${host}/v2/"`);
  });
});
