/**
 * Imports across a crash: the shipped server in a child process is killed (SIGKILL) in the
 * middle of a web-download and of a stage; on restart the download's task is failed with a
 * message, its image is left as a failed import leaves it (queued, lock gone, the store it was
 * going to listed as failed), nothing it brought is held, and it imports again; the half-staged
 * image is queued and stages again.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { type ChildServer, startChildServer } from "../helpers/child-server.js";
import { waitFor } from "../helpers/wait.js";
import { startWebServer, type WebServer } from "../helpers/web.js";

let dir: string;
let web: WebServer;
const children: ChildProcess[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tessera-import-restart-"));
  web = await startWebServer();
  await writeFile(
    join(dir, "config.json"),
    JSON.stringify({
      importFilter: { allowedHosts: ["127.0.0.1"], allowedPorts: [web.port] },
      gcIntervalSeconds: 0,
      scrubIntervalSeconds: 0,
      logLevel: "info",
    }),
  );
});
afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  await web?.close();
  await rm(dir, { recursive: true, force: true });
});

function serve(): Promise<ChildServer> {
  return startChildServer(join(dir, "data"), join(dir, "config.json")).then((s) => {
    children.push(s.child);
    return s;
  });
}

async function statusOf(url: string, id: string): Promise<string> {
  return ((await (await fetch(`${url}/v2/images/${id}`)).json()) as { status: string }).status;
}

const json = { "Content-Type": "application/json", Accept: "application/json" };

test("a web-download cut off by SIGKILL: failed task, queued image without lock, importable again", async () => {
  web.routes.set("/slow.raw", { kind: "slow", data: randomBytes(256 * 1024), pieceBytes: 4096, everyMs: 50 });
  let server = await serve();
  const created = await fetch(`${server.url}/v2/images`, {
    method: "POST",
    headers: json,
    body: JSON.stringify({ name: "cut", disk_format: "raw", container_format: "bare" }),
  });
  const id = ((await created.json()) as { id: string }).id;
  const started = await fetch(`${server.url}/v2/images/${id}/import`, {
    method: "POST",
    headers: json,
    body: JSON.stringify({ method: { name: "web-download", uri: `${web.url}/slow.raw` } }),
  });
  expect(started.status).toBe(202);
  // Under way: some bytes have gone out.
  await waitFor("the web server's first hit", () => web.hits.length > 0);
  expect(((await (await fetch(`${server.url}/v2/images/${id}`)).json()) as { status: string }).status).toBe(
    "importing",
  );
  server.child.kill("SIGKILL");
  await server.exited;

  server = await serve();
  const img = (await (await fetch(`${server.url}/v2/images/${id}`)).json()) as Record<string, unknown>;
  expect(img).toMatchObject({
    status: "queued",
    size: null,
    os_glance_importing_to_stores: "",
    os_glance_failed_import: "local",
  });
  expect(img).not.toHaveProperty("os_glance_import_task");
  const tasks = (await (await fetch(`${server.url}/v2/images/${id}/tasks`)).json()) as {
    tasks: { status: string; message: string; expires_at: string | null }[];
  };
  expect(tasks.tasks[0]).toMatchObject({ status: "failure" });
  expect(tasks.tasks[0]?.message).toMatch(/interrupted/);
  expect(tasks.tasks[0]?.expires_at).not.toBeNull();

  web.routes.set("/fast.raw", { kind: "bytes", data: Buffer.from("whole this time") });
  await fetch(`${server.url}/v2/images/${id}/import`, {
    method: "POST",
    headers: json,
    body: JSON.stringify({ method: { name: "web-download", uri: `${web.url}/fast.raw` } }),
  });
  await waitFor("the import to finish", async () => (await statusOf(server.url, id)) === "active");
  const body = await (await fetch(`${server.url}/v2/images/${id}/file`)).text();
  expect(body).toBe("whole this time");
  // Nothing from the cut-off download is held: the store holds only the finished image.
  const stats = (await (await fetch(`${server.url}/tessera/v1/stats`)).json()) as {
    stores: { objects: number }[];
  };
  expect(stats.stores[0]?.objects).toBe(1);
  server.child.kill("SIGKILL");
  await server.exited;
});

test("a stage cut off by SIGKILL: the image is queued again after the restart, and stages anew", async () => {
  let server = await serve();
  const created = await fetch(`${server.url}/v2/images`, {
    method: "POST",
    headers: json,
    body: JSON.stringify({ name: "half-staged", disk_format: "raw", container_format: "bare" }),
  });
  const id = ((await created.json()) as { id: string }).id;
  const req = request(`${server.url}/v2/images/${id}/stage`, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream", "Content-Length": 4 * 1024 * 1024 },
  });
  req.on("error", () => {});
  req.write(randomBytes(256 * 1024));
  await waitFor("the stage to begin", async () => (await statusOf(server.url, id)) === "uploading");
  server.child.kill("SIGKILL");
  await server.exited;
  req.destroy();

  server = await serve();
  expect(((await (await fetch(`${server.url}/v2/images/${id}`)).json()) as { status: string }).status).toBe(
    "queued",
  );
  const again = await fetch(`${server.url}/v2/images/${id}/stage`, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream" },
    body: "staged at last",
  });
  expect(again.status).toBe(204);
  server.child.kill("SIGKILL");
  await server.exited;
});
