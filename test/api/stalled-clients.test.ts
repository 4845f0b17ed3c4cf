/**
 * Clients that stop: an upload or a stage whose body goes silent is cut after clientIdleSeconds
 * and its image is queued again; a download nobody reads is ended; uploads past maxUploads are
 * refused with 503 and Retry-After, and are taken again once the stalled ones are cut.
 */
import { randomBytes } from "node:crypto";
import { type ClientRequest, request } from "node:http";
import { expect, test } from "vitest";
import { client, sharedServer } from "../helpers/server.js";

const server = sharedServer({ clientIdleSeconds: 1, maxUploads: 3 });
const api = client(() => server().url);

/** Starts a PUT of `declared` bytes, sends `sent` of them, and stops sending (the socket stays open). */
function stalledPut(
  path: string,
  declared: number,
  sent: number,
): { req: ClientRequest; closed: Promise<void> } {
  const req = request(server().url + path, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream", "Content-Length": declared },
  });
  const closed = new Promise<void>((resolve) => {
    req.on("error", () => resolve());
    req.on("close", () => resolve());
  });
  req.write(randomBytes(sent));
  return { req, closed };
}

async function statusOf(id: string): Promise<string> {
  return ((await (await api.get(`/v2/images/${id}`)).json()) as { status: string }).status;
}

async function until(ok: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("an upload whose body goes silent is cut after the idle timeout and its image is queued again", async () => {
  const img = await api.createImage({ name: "stalls", disk_format: "raw", container_format: "bare" });
  const { closed } = stalledPut(`/v2/images/${img.id}/file`, 64 * 1024 * 1024, 3 * 1024 * 1024);
  await until(async () => (await statusOf(img.id)) === "saving");
  await closed;
  await until(async () => (await statusOf(img.id)) === "queued");
  expect(server().inflight().uploads).toBe(0);
  // The image takes a whole upload afterwards.
  expect((await api.upload(img.id, "all of it")).status).toBe(204);
  expect(await statusOf(img.id)).toBe("active");
});

test("a stage whose body goes silent is cut too, and the image is queued again", async () => {
  const img = await api.createImage({ name: "stage-stalls", disk_format: "raw", container_format: "bare" });
  const { closed } = stalledPut(`/v2/images/${img.id}/stage`, 16 * 1024 * 1024, 1024 * 1024);
  await closed;
  await until(async () => (await statusOf(img.id)) === "queued");
});

test("a download nobody reads is ended after the idle timeout", async () => {
  const img = await api.createImage({ name: "unread", disk_format: "raw", container_format: "bare" });
  expect((await api.upload(img.id, randomBytes(48 * 1024 * 1024))).status).toBe(204);
  // Read nothing: the socket's buffers fill and the server's writes wait. (A paused client does
  // not see the connection end either, so the server's count is what the test watches.)
  const req = request(`${server().url}/v2/images/${img.id}/file`, (res) => res.pause());
  req.on("error", () => {});
  req.end();
  await until(async () => server().inflight().downloads === 1);
  await until(async () => server().inflight().downloads === 0);
  req.destroy();
});

test("uploads past maxUploads get 503 with Retry-After, and are taken again once stalled ones are cut", async () => {
  const imgs = await Promise.all(
    [0, 1, 2, 3].map((i) =>
      api.createImage({ name: `cap-${i}`, disk_format: "raw", container_format: "bare" }),
    ),
  );
  const stalled = imgs
    .slice(0, 3)
    .map((img) => stalledPut(`/v2/images/${img.id}/file`, 8 * 1024 * 1024, 1024));
  await until(async () => server().inflight().uploads === 3);
  const extra = imgs[3] as { id: string };
  const refused = await fetch(`${server().url}/v2/images/${extra.id}/file`, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream", Accept: "application/json" },
    body: "refused",
  });
  expect(refused.status).toBe(503);
  expect(refused.headers.get("retry-after")).toBe("10");
  expect(((await refused.json()) as { message: string }).message).toMatch(/uploads in progress/);
  expect(await statusOf(extra.id)).toBe("queued");
  await Promise.all(stalled.map((s) => s.closed));
  await until(async () => server().inflight().uploads === 0);
  expect((await api.upload(extra.id, "taken")).status).toBe(204);
});
