/**
 * Format inspection through the API: PUT .../file sets virtual_size from the image's header,
 * and refuses hostile or mislabelled content with a 400 naming the rule, leaving the image
 * queued with no data and nothing committed, as Glance does.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { DEFAULT_FORMAT_POLICY } from "../../src/formats/rules.js";
import {
  makeBackedQcow2,
  makeIso,
  makeRawData,
  qemuConvert,
  qemuCreate,
  qemuVirtualSize,
  useScratchDir,
} from "../helpers/disk-images.js";
import { client, sharedServer, startTestServer } from "../helpers/server.js";
import { requireTools } from "../helpers/tools.js";

const MiB = 1024 * 1024;
const server = sharedServer();
const api = client(() => server().url);
let dir = "";
let backedPath = "";

useScratchDir("tessera-api-formats-", (d) => {
  dir = d;
});

/** A qcow2 naming a backing file, made once (by qemu-img: its tests declare it). */
function backed(): string {
  backedPath ||= makeBackedQcow2(dir, "backed.qcow2", 10 * MiB);
  return backedPath;
}

async function image(id: string): Promise<Record<string, unknown>> {
  return (await (await api.get(`/v2/images/${id}`)).json()) as Record<string, unknown>;
}

describe("format inspection on upload", () => {
  it("sets virtual_size from the qcow2 header and keeps the bytes as sent", async (ctx) => {
    requireTools(ctx, ["qemu-img"]);
    const path = qemuConvert(dir, makeRawData(dir, "d.raw", 3 * MiB), "d.qcow2", "qcow2");
    const bytes = readFileSync(path);
    const img = await api.createImage({ name: "q", disk_format: "qcow2", container_format: "bare" });
    expect((await api.upload(img.id, bytes)).status).toBe(204);
    expect(await image(img.id)).toMatchObject({
      status: "active",
      size: bytes.length,
      virtual_size: qemuVirtualSize(path, "qcow2"),
    });
    const back = Buffer.from(await (await api.get(`/v2/images/${img.id}/file`)).arrayBuffer());
    expect(back.equals(bytes)).toBe(true);
  });

  it("sets an ISO's virtual_size from its volume descriptor and a raw image's from its length", async (ctx) => {
    requireTools(ctx, ["xorriso"]);
    const iso = readFileSync(makeIso(dir, "a.iso"));
    const a = await api.createImage({ name: "iso", disk_format: "iso", container_format: "bare" });
    expect((await api.upload(a.id, iso)).status).toBe(204);
    expect((await image(a.id)).virtual_size).toBe(iso.length);
    const raw = readFileSync(makeRawData(dir, "r.raw", MiB + 3));
    const b = await api.createImage({ name: "raw", disk_format: "raw", container_format: "bare" });
    expect((await api.upload(b.id, raw)).status).toBe(204);
    expect((await image(b.id)).virtual_size).toBe(MiB + 3);
  });

  it("refuses a qcow2 with a backing file: 400 naming the rule, image queued with no data", async (ctx) => {
    requireTools(ctx, ["qemu-img"]);
    const img = await api.createImage({ name: "evil", disk_format: "qcow2", container_format: "bare" });
    const res = await api.upload(img.id, readFileSync(backed()));
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("[qcow2-backing-file] the qcow2 image names a backing file");
    expect(await image(img.id)).toMatchObject({
      status: "queued",
      size: null,
      virtual_size: null,
      checksum: null,
      os_hash_value: null,
    });
    expect((await api.get(`/v2/images/${img.id}/file`)).status).toBe(204);
  });

  it("refuses qcow2 content declared raw, and takes it once the image says qcow2", async (ctx) => {
    requireTools(ctx, ["qemu-img"]);
    const bytes = readFileSync(qemuCreate(dir, "plain.qcow2", "qcow2", 5 * MiB));
    const img = await api.createImage({ name: "mislabelled", disk_format: "raw", container_format: "bare" });
    const res = await api.upload(img.id, bytes);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("[raw-over-formatted]");
    expect((await image(img.id)).status).toBe("queued");
    const patched = await api.patch(img.id, [{ op: "replace", path: "/disk_format", value: "qcow2" }]);
    expect(patched.status).toBe(200);
    expect((await api.upload(img.id, bytes)).status).toBe(204);
    expect(await image(img.id)).toMatchObject({ status: "active", virtual_size: 5 * MiB });
  });

  it("answers a hostile header with 400 before the client has sent the rest of the body", async (ctx) => {
    requireTools(ctx, ["qemu-img"]);
    const img = await api.createImage({ name: "early", disk_format: "qcow2", container_format: "bare" });
    const head = readFileSync(backed()).subarray(0, 65536);
    const url = new URL(api.url(`/v2/images/${img.id}/file`));
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(url, {
        method: "PUT",
        headers: { "content-type": "application/octet-stream", "content-length": 1024 * MiB },
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on("error", reject);
      // 64 KiB of the promised 1 GiB, then nothing: only an early answer ends this.
      req.write(head);
    });
    expect(status).toBe(400);
    expect((await image(img.id)).status).toBe("queued");
  });
});

describe("format policy from the configuration", () => {
  it("commits nothing for a refused upload: the content never becomes a stored object", async (ctx) => {
    requireTools(ctx, ["qemu-img"]);
    const s = await startTestServer();
    const local = client(() => s.url);
    const bytes = readFileSync(backed());
    const img = await local.createImage({ name: "evil", disk_format: "qcow2", container_format: "bare" });
    expect((await local.upload(img.id, bytes)).status).toBe(400);
    await s.close();
    // The same bytes ingested elsewhere give the object id they would have had here.
    const scratch = await mkdtemp(join(tmpdir(), "tessera-scratch-"));
    const other = await Engine.openDir(scratch, { durable: false });
    const { manifestId } = await other.ingest(
      (async function* () {
        yield bytes;
      })(),
    );
    await other.close();
    const engine = await Engine.openDir(s.dataDir, { durable: false });
    try {
      await expect(engine.stat(manifestId)).rejects.toThrow(/not found/);
    } finally {
      await engine.close();
      await rm(scratch, { recursive: true, force: true });
      await rm(s.dataDir, { recursive: true, force: true });
    }
  });

  it("accepts what a rule switched off by name would refuse, and sets no virtual_size with inspection off", async (ctx) => {
    requireTools(ctx, ["qemu-img"]);
    const bytes = readFileSync(backed());
    const lax = await startTestServer({
      formats: {
        ...DEFAULT_FORMAT_POLICY,
        rules: { ...DEFAULT_FORMAT_POLICY.rules, "qcow2-backing-file": false },
      },
    });
    const off = await startTestServer({ formats: { ...DEFAULT_FORMAT_POLICY, inspect: false } });
    try {
      for (const [s, virtual] of [
        [lax, 10 * MiB],
        [off, null],
      ] as const) {
        const c = client(() => s.url);
        const img = await c.createImage({ name: "backed", disk_format: "qcow2", container_format: "bare" });
        expect((await c.upload(img.id, bytes)).status).toBe(204);
        const got = (await (await c.get(`/v2/images/${img.id}`)).json()) as Record<string, unknown>;
        expect(got).toMatchObject({ status: "active", virtual_size: virtual });
      }
    } finally {
      for (const s of [lax, off]) {
        await s.close();
        await rm(s.dataDir, { recursive: true, force: true });
      }
    }
  });
});
