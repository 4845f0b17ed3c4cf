/**
 * The images' record objects on the stores, over a real server and the real CLI: a record
 * landing late (a slower node's save of an older state) never wins over the newer state or a
 * deletion when the catalog is rebuilt; a record that cannot be written fails no request, is
 * counted in the metrics, reported by `tessera image-records` and written by its --write.
 */
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { ImageService, saveImageRecordObject } from "../../src/images/images.js";
import { idOfFolder, recordFolder, recordName, seqOfName } from "../../src/images/record-objects.js";
import { BIN, tessera, twoStores } from "../helpers/catalog-loss.js";
import { prng } from "../helpers/data.js";
import { client, startTestServer } from "../helpers/server.js";

let work: string | undefined;
afterEach(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const recordsDir = (store: string, id: string) => join(store, "records", "images", id);

/** The record objects of an image in a filesystem store, by name, with their bytes. */
async function recordFiles(store: string, id: string): Promise<Map<string, Buffer>> {
  const dir = recordsDir(store, id);
  const out = new Map<string, Buffer>();
  for (const name of await readdir(dir)) out.set(name, await readFile(join(dir, name)));
  return out;
}

/** A temp folder with one filesystem store, and a server's options on it. */
async function oneStore() {
  const dir = await mkdtemp(join(tmpdir(), "tessera-records-"));
  work = dir;
  const store = join(dir, "store");
  const stores = { local: { type: "filesystem" as const, path: store } };
  return { dir, store, options: { stores, gcIntervalSeconds: 0, scrubIntervalSeconds: 0 } };
}

describe("image record objects", () => {
  it("names an image's records by its id, or by its id's hex when the id is no object name segment, and reads the id back", () => {
    for (const id of [randomUUID(), "ami-0001", "a/b c", "_x", "..", "ünïcode"]) {
      const folder = recordFolder(id);
      expect(folder).toMatch(/^images\/[A-Za-z0-9_-][A-Za-z0-9._-]*\/$/);
      expect(idOfFolder(folder)).toBe(id);
      expect(seqOfName(recordName(id, 42))).toBe(42);
    }
    expect(recordFolder("a/b")).not.toBe(recordFolder("a_b"));
  });

  it("saveImageRecordObject writes an image's record as the catalog has it, for records written outside the service", async () => {
    const { dir, store, options } = await oneStore();
    const engine = await Engine.openDir(join(dir, "data"), { stores: options.stores, durable: false });
    try {
      const svc = await ImageService.open(engine);
      const id = randomUUID();
      // A migration's unit of work on a catalog of its own would write no record object: here,
      // the record written, then its objects removed, stands for that.
      await svc.create({ id, name: "migrated", owner: "p1", tags: ["old"] });
      await svc.recordsSaved();
      for (const name of (await recordFiles(store, id)).keys()) await rm(join(recordsDir(store, id), name));
      expect((await recordFiles(store, id)).size).toBe(0);
      await saveImageRecordObject(svc, id);
      const files = await recordFiles(store, id);
      expect(files.size).toBe(1);
      const rec = JSON.parse(String([...files.values()][0]));
      expect(rec).toMatchObject({ deleted: false, id, image: await svc.get(id), members: [] });
    } finally {
      await engine.close();
    }
  });

  it("a record landing late with an older state, or after a deletion, loses to the newer one when the catalog is rebuilt", async () => {
    const { dir, store, options } = await oneStore();
    const s = await startTestServer(options, join(dir, "data"));
    const api = client(() => s.url);
    const patchName = async (on: typeof api, id: string, name: string) =>
      expect((await on.patch(id, [{ op: "replace", path: "/name", value: name }])).status).toBe(200);
    const kept = await api.createImage({ name: "v1", disk_format: "raw", container_format: "bare" });
    expect((await api.upload(kept.id, prng(3, 300_000))).status).toBe(204);
    const gone = await api.createImage({ name: "to delete" });
    const older = await recordFiles(store, kept.id);
    const beforeDelete = await recordFiles(store, gone.id);
    await patchName(api, kept.id, "v2");
    expect((await api.request("DELETE", `/v2/images/${gone.id}`)).status).toBe(204);
    await s.close();
    // Each save removed the older records: only the newest (or the tombstone) is left.
    expect([...(await recordFiles(store, kept.id)).keys()]).toHaveLength(1);
    expect(JSON.parse(String([...(await recordFiles(store, gone.id)).values()][0]))).toMatchObject({
      deleted: true,
    });
    // The slow node's saves land now, after the newer ones.
    for (const [id, files] of [
      [kept.id, older],
      [gone.id, beforeDelete],
    ] as const) {
      for (const [name, bytes] of files) await writeFile(join(recordsDir(store, id), name), bytes);
    }
    expect((await recordFiles(store, kept.id)).size).toBe(2);

    const config = join(dir, "tessera.json");
    await writeFile(config, JSON.stringify({ stores: options.stores }));
    expect(tessera(config, s.dataDir, "image-records")).toMatchObject({ current: 1, stale: [], orphans: [] });
    await rm(join(s.dataDir, "catalog"), { recursive: true });
    const rebuilt = tessera(config, s.dataDir, "rebuild-index");
    expect(rebuilt.images).toMatchObject({ restored: 1, deleted: 1 });
    const again = await startTestServer(options, s.dataDir);
    try {
      const api2 = client(() => again.url);
      const shown = (await (await api2.get(`/v2/images/${kept.id}`)).json()) as Record<string, unknown>;
      expect(shown).toMatchObject({ name: "v2", status: "active", size: 300_000 });
      expect((await api2.get(`/v2/images/${gone.id}`)).status).toBe(404);
      // A save after the rebuild is numbered past the lost catalog's: it is the newest, and it
      // removes the late one.
      await patchName(api2, kept.id, "v3");
      const files = await recordFiles(store, kept.id);
      expect(files.size).toBe(1);
      expect(JSON.parse(String([...files.values()][0]))).toMatchObject({ image: { name: "v3" } });
    } finally {
      await again.close();
    }
  }, 120_000);

  it("image-records --write tombstones a deleted image's leftover record, but not the record of an image waiting for a store's rebuild", async () => {
    const { dir } = await oneStore();
    const options = { stores: twoStores(dir), gcIntervalSeconds: 0, scrubIntervalSeconds: 0 };
    const local = join(dir, "local"); // twoStores puts the first store there
    const s = await startTestServer(options, join(dir, "data"));
    const api = client(() => s.url);
    const gone = await api.createImage({ name: "deleted, its tombstone lost" });
    const leftover = await recordFiles(local, gone.id);
    expect((await api.request("DELETE", `/v2/images/${gone.id}`)).status).toBe(204);
    const waiting = await api.createImage({
      name: "in the second store",
      disk_format: "raw",
      container_format: "bare",
    });
    const put = await api.request("PUT", `/v2/images/${waiting.id}/file`, {
      headers: { "content-type": "application/octet-stream", "x-image-meta-store": "second" },
      body: new Uint8Array(prng(6, 100_000)).buffer,
    });
    expect(put.status).toBe(204);
    await s.close();
    // The tombstone never reached the store; the record before it is all there is.
    for (const name of (await recordFiles(local, gone.id)).keys())
      await rm(join(recordsDir(local, gone.id), name));
    for (const [name, bytes] of leftover) await writeFile(join(recordsDir(local, gone.id), name), bytes);

    const config = join(dir, "tessera.json");
    await writeFile(config, JSON.stringify({ stores: options.stores }));
    const run = (...args: string[]) => tessera(config, s.dataDir, ...args);
    expect(run("image-records")).toMatchObject({ current: 1, orphans: [expect.stringContaining(gone.id)] });
    expect(run("image-records", "--write")).toMatchObject({ written: 1, failed: [] });
    expect(run("image-records")).toMatchObject({ current: 1, orphans: [] });
    // The catalog lost: the first store's rebuild leaves the second store's image waiting, and
    // a --write then must not take it for a deleted one.
    await rm(join(s.dataDir, "catalog"), { recursive: true });
    expect(run("rebuild-index", "--store", "local").images).toMatchObject({
      deleted: 1,
      waiting: [waiting.id],
    });
    expect(run("image-records", "--write")).toMatchObject({ images: 0, written: 0 });
    expect(run("rebuild-index", "--store", "second").images).toMatchObject({ restored: 1, deleted: 1 });
    expect(run("image-records")).toMatchObject({ images: 1, current: 1, orphans: [] });
  }, 120_000);

  it("a record that cannot be written fails no request; it is counted, reported by image-records, and written by --write", async () => {
    const { dir, store, options } = await oneStore();
    // A file where the image's records' folder would go: none of them can be written.
    const id = randomUUID();
    await mkdir(join(store, "records", "images"), { recursive: true });
    await writeFile(recordsDir(store, id), "in the way");
    const s = await startTestServer(options, join(dir, "data"));
    const api = client(() => s.url);
    const img = await api.createImage({
      id,
      name: "unrecorded",
      disk_format: "raw",
      container_format: "bare",
    });
    expect((await api.upload(img.id, prng(4, 200_000))).status).toBe(204);
    const metrics = await (await api.get("/metrics")).text();
    expect(metrics).toMatch(/^tessera_image_record_write_failures_total [1-9]/m);
    await s.close();

    const config = join(dir, "tessera.json");
    await writeFile(config, JSON.stringify({ stores: options.stores }));
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [BIN, "image-records", ...args, "--data", s.dataDir, "--config", config]);
    const missing = run();
    expect(missing.status, missing.stderr.toString()).toBe(1);
    expect(JSON.parse(missing.stdout.toString())).toMatchObject({ images: 1, missing: [img.id] });
    await rm(recordsDir(store, id));
    const written = run("--write");
    expect(written.status, written.stderr.toString()).toBe(0);
    expect(JSON.parse(written.stdout.toString())).toMatchObject({ written: 1, failed: [] });
    expect(tessera(config, s.dataDir, "image-records")).toMatchObject({ images: 1, current: 1, missing: [] });
  }, 120_000);
});
