/**
 * A data directory on a 64 MiB tmpfs, filled to the last byte: an upload that cannot fit is
 * 413 and leaves its image queued; with the disk at 100 %, creates are 503 with Retry-After (the
 * catalog cannot write), never 500 and never the end of the process; reads go on; deleting an
 * image and collecting garbage frees space (the catalog's reserve lets those commit), and writes
 * work again.
 */

import { createHash, randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { client, startTestServer, type TestServer } from "../helpers/server.js";
import { fillDisk, mountTmpfs } from "../helpers/tmpfs.js";

const mounted = mountTmpfs(64);
const skip = "reason" in mounted ? mounted.reason : undefined;
if (skip) console.warn(`full-disk tests skipped: ${skip}`);

let server: TestServer;
const api = client(() => server.url);
beforeAll(async () => {
  if ("reason" in mounted) return;
  server = await startTestServer(
    { fsync: true, gcIntervalSeconds: 0, scrubIntervalSeconds: 0 },
    join(mounted.dir, "data"),
  );
});
afterAll(async () => {
  if ("reason" in mounted) return;
  await server?.close();
  mounted.unmount();
});

const json = { "Content-Type": "application/json", Accept: "application/json" };
const create = (body: Record<string, unknown>) =>
  fetch(`${server.url}/v2/images`, { method: "POST", headers: json, body: JSON.stringify(body) });

test.skipIf(skip !== undefined)(
  "a full disk: 413 for an upload, 503 for a create, reads served, writes back after delete and GC",
  async () => {
    const kept = randomBytes(20 * 1024 * 1024);
    const a = await api.createImage({ name: "kept", disk_format: "raw", container_format: "bare" });
    expect((await api.upload(a.id, kept)).status).toBe(204);

    // Larger than the room left: the store refuses it.
    const big = await api.createImage({ name: "too-big", disk_format: "raw", container_format: "bare" });
    const res = await fetch(`${server.url}/v2/images/${big.id}/file`, {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream", Accept: "application/json" },
      body: new Uint8Array(randomBytes(80 * 1024 * 1024)).buffer,
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { message: string }).message).toMatch(/storage media is full/);
    expect(((await (await api.get(`/v2/images/${big.id}`)).json()) as { status: string }).status).toBe(
      "queued",
    );

    // The disk at 100 %: a create with a 60 KB property cannot commit.
    const filler = fillDisk((mounted as { dir: string }).dir);
    const refused = await create({
      name: "b",
      disk_format: "raw",
      container_format: "bare",
      big: "x".repeat(60_000),
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("60");
    expect(((await refused.json()) as { message: string }).message).toMatch(/catalog cannot write/);
    const upload = await api.upload(big.id, randomBytes(4 * 1024 * 1024));
    expect([413, 503]).toContain(upload.status);

    // Reads go on, and the bytes are intact.
    expect((await api.get("/v2/images")).status).toBe(200);
    const got = Buffer.from(await (await api.get(`/v2/images/${a.id}/file`)).arrayBuffer());
    expect(createHash("md5").update(got).digest("hex")).toBe(createHash("md5").update(kept).digest("hex"));

    // The operator frees space the Glance way: delete, then collect.
    expect((await api.request("DELETE", `/v2/images/${a.id}`)).status).toBe(204);
    const token = readFileSync(join(server.dataDir, "tessera.token"), "utf8").trim();
    const gc = await fetch(`${server.url}/tessera/v1/gc`, {
      method: "POST",
      headers: { ...json, "X-Auth-Token": token },
      body: JSON.stringify({ graceSeconds: 0 }),
    });
    expect(gc.status).toBe(200);
    expect(
      ((await gc.json()) as { stores: { bytesDeleted: number }[] }).stores[0]?.bytesDeleted,
    ).toBeGreaterThan(20 * 1024 * 1024);
    expect(
      (await create({ name: "c", disk_format: "raw", container_format: "bare", big: "y".repeat(60_000) }))
        .status,
    ).toBe(201);
    expect((await api.upload(big.id, randomBytes(8 * 1024 * 1024))).status).toBe(204);
    rmSync(filler, { force: true });
    rmSync(`${filler}.tail`, { force: true });
  },
);
