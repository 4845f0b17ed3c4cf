/**
 * `tessera backup` of an embedded Tessera (LMDB catalog, filesystem store) while it serves,
 * and `tessera restore` into a fresh directory, as shipped (dist/): every image uploaded
 * before the backup downloads intact from a server on the restored data, and the upload that
 * was in flight during the backup (a pack of it already on disk) is there without data
 * (queued), never corrupt, and its pack is the restored store's garbage. A collection
 * with no grace run between the catalog's snapshot and the copy of the packs deletes nothing
 * the snapshot names while the backup's lease is held; without the lease, the backup's check
 * catches the pack the collection deleted.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backup } from "../../src/backup/backup.js";
import { loadConfig } from "../../src/config/load.js";
import {
  collectNow,
  expectAbsentOrIntact,
  expectImagesIntact,
  holdUpload,
  md5,
  tessera,
  uploadImage,
} from "../helpers/backup.js";
import { type ChildServer, startChildServer } from "../helpers/child-server.js";
import { prng } from "../helpers/data.js";
import { waitFor } from "../helpers/wait.js";

const MiB = 1024 * 1024;
let work: string;
let config: string;
const servers: ChildServer[] = [];

async function serve(dataDir: string): Promise<ChildServer> {
  const s = await startChildServer(dataDir, config);
  servers.push(s);
  return s;
}

async function stop(s: ChildServer): Promise<void> {
  await s.kill();
  servers.splice(servers.indexOf(s), 1);
}

/** The packs in the embedded store of data directory `dir`. */
async function packCount(dir: string): Promise<number> {
  const files = await readdir(join(dir, "objects", "packs"), { recursive: true }).catch(() => []);
  return files.filter((f) => f.endsWith(".pack")).length;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "tessera-backup-"));
  config = join(work, "tessera.json");
  // Collections only when a test asks for one.
  await writeFile(config, JSON.stringify({ workers: 1, gcIntervalSeconds: 0, scrubIntervalSeconds: 0 }));
});
afterAll(async () => {
  for (const s of [...servers]) await s.kill();
  await rm(work, { recursive: true, force: true });
});

describe("backup and restore of an embedded Tessera", () => {
  it("backs up while serving and an upload is in flight; the restored data serves every image intact", async () => {
    const data = join(work, "a");
    const a = await serve(data);
    const sums = new Map<string, string>();
    const base = Buffer.from(prng(1, 3 * MiB));
    const images: [string, Buffer][] = [
      ["base", base],
      ["derived", Buffer.concat([base.subarray(0, 2 * MiB), Buffer.from(prng(2, MiB))])],
      ["other", Buffer.from(prng(3, 2 * MiB + 5))],
      ["tiny", Buffer.from("a few bytes")],
    ];
    for (const [name, bytes] of images) sums.set(await uploadImage(a.url, name, bytes), md5(bytes));
    // Past a pack's 16 MiB: one pack of the upload in flight is on disk, named by no commit.
    const packsBefore = await packCount(data);
    const flying = Buffer.concat([base.subarray(MiB), Buffer.from(prng(4, 18 * MiB))]);
    const held = await holdUpload(a.url, flying, 19 * MiB);
    await waitFor("a pack of the upload in flight", async () => (await packCount(data)) > packsBefore);

    const to = join(work, "backup-a");
    const made = await tessera("backup", "--to", to, "--data", data, "--config", config);
    expect(made.status, made.err).toBe(0);
    const manifest = JSON.parse(made.out);
    expect(manifest).toMatchObject({
      backupFormat: 1,
      catalog: { kind: "lmdb", layout: 3 },
      storeFormat: { formatVersion: 1, packVersion: 2, manifestVersion: 1 },
      stores: [{ name: "local", type: "filesystem", copied: true }],
      gcHeldBy: "lease",
    });
    expect(manifest.stores[0].packsChecked).toBeGreaterThan(0);
    expect(JSON.parse(await readFile(join(to, "tessera-backup.json"), "utf8"))).toEqual(manifest);
    // A backup refuses a directory that is not empty; a restore, a data directory that is not.
    const again = await tessera("backup", "--to", to, "--data", data, "--config", config);
    expect(again.status).toBe(1);
    expect(again.err).toMatch(/not empty/);
    const onto = await tessera("restore", "--from", to, "--data", data, "--config", config);
    expect(onto.status).toBe(1);
    expect(onto.err).toMatch(/data directory .* is not empty/);

    // Restored elsewhere while the original still serves and the upload is still in flight:
    // its leases (the upload's and its ingest's) are alive, and the restored catalog drops them.
    const restoredDir = join(work, "restored-a");
    const restored = await tessera("restore", "--from", to, "--data", restoredDir, "--config", config);
    expect(restored.status, restored.err).toBe(0);
    const report = JSON.parse(restored.out);
    expect(report).toMatchObject({
      catalog: "lmdb",
      stores: [{ name: "local", restored: true, packsChecked: manifest.stores[0].packsChecked }],
    });
    expect(report.leasesDropped).toBeGreaterThan(0);
    // The upload goes on after the backup, and commits on the original.
    expect(await held.finish()).toBe(204);
    await stop(a);
    const b = await serve(restoredDir);
    await expectImagesIntact(b.url, sums);
    expect(await expectAbsentOrIntact(b.url, held.id, md5(flying))).toBe("queued");
    // Its pack, copied with the store, is known to no catalog: the first collection takes it.
    const collected = await collectNow(b.url);
    expect(collected.orphansTrashed).toBeGreaterThan(0);
    expect(collected.objectsDeleted).toBeGreaterThan(0);
    await expectImagesIntact(b.url, sums);
    // The restored data takes new uploads, deduplicated against what was restored.
    const next = Buffer.concat([base, Buffer.from(prng(5, MiB))]);
    const nextId = await uploadImage(b.url, "after restore", next);
    await expectImagesIntact(b.url, new Map([[nextId, md5(next)]]));
    await stop(b);
  }, 120_000);

  const rename = (url: string, id: string, name: string) =>
    fetch(`${url}/v2/images/${id}`, {
      method: "PATCH",
      headers: { "Content-Type": "application/openstack-images-v2.1-json-patch" },
      body: JSON.stringify([{ op: "replace", path: "/name", value: name }]),
    });

  /** A server with two images; a backup in this process that deletes one and collects with no grace between the snapshot and the copy. */
  async function backupAmidCollection(name: string, unsafeNoLease: boolean) {
    const data = join(work, name);
    const s = await serve(data);
    const kept = Buffer.from(prng(10, 2 * MiB));
    const doomed = Buffer.from(prng(11, 2 * MiB));
    const keptId = await uploadImage(s.url, "kept", kept);
    const doomedId = await uploadImage(s.url, "doomed", doomed);
    let gc: Record<string, number> = {};
    const to = join(work, `backup-${name}`);
    const cfg = loadConfig(config, {}, { dataDir: data });
    const run = backup(cfg, to, {
      unsafeNoLease,
      onStep: async (step) => {
        if (step !== "stores") return;
        expect((await fetch(`${s.url}/v2/images/${doomedId}`, { method: "DELETE" })).status).toBe(204);
        gc = await collectNow(s.url);
        // Changes after the snapshot: their image records are copied with the store, numbered
        // well past the snapshot's sequence number.
        for (let i = 0; i < 30; i++) expect((await rename(s.url, keptId, `kept ${i}`)).status).toBe(200);
      },
    });
    return {
      s,
      run,
      to,
      gc: () => gc,
      sums: new Map([
        [keptId, md5(kept)],
        [doomedId, md5(doomed)],
      ]),
    };
  }

  it("holds a collection off the packs its snapshot names: an image deleted and collected mid-backup restores whole", async () => {
    const { s, run, to, gc, sums } = await backupAmidCollection("gc-held", false);
    await run;
    expect(gc()).toMatchObject({ packsTrashed: 1, objectsDeleted: 0 });
    expect(gc().trashWaiting).toBeGreaterThan(0);
    await stop(s);
    const dir = join(work, "restored-gc-held");
    const restored = await tessera("restore", "--from", to, "--data", dir, "--config", config);
    expect(restored.status, restored.err).toBe(0);
    const b = await serve(dir);
    // The snapshot was taken before the delete: both images, whole.
    await expectImagesIntact(b.url, sums);
    // The records of the changes after the snapshot (the renames, the deletion's tombstone) came
    // with the store: changes now must be saved above them, or they would outrank these, and a
    // rebuild would bring back an older name, or take the image for deleted.
    for (const id of sums.keys()) expect((await rename(b.url, id, "after the restore")).status).toBe(200);
    await stop(b);
    const check = await tessera("image-records", "--data", dir, "--config", config);
    expect(check.status, check.err).toBe(0);
    expect(JSON.parse(check.out)).toMatchObject({ images: 2, current: 2, missing: [], stale: [] });
  }, 120_000);

  it("without its lease, the backup's check finds the pack a collection deleted under it", async () => {
    const { s, run, gc } = await backupAmidCollection("gc-unheld", true);
    await expect(run).rejects.toThrow(/were not copied whole \(packs\/.* is missing\)/);
    expect(gc().objectsDeleted).toBeGreaterThan(0);
    await stop(s);
  }, 120_000);
});
