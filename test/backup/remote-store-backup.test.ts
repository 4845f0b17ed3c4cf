/**
 * What `tessera backup` does with an S3 store (a real S3 server, s3rver): it names it in the
 * manifest as not copied, copies the filesystem store beside it, and `tessera restore` puts
 * the catalog back over the bucket as it is: a server on the restored data serves the
 * images of both stores, the S3 one's from the bucket (docs/operations.md, "Backing up and
 * restoring").
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { expectImagesIntact, md5, tessera, uploadImage } from "../helpers/backup.js";
import { type ChildServer, startChildServer } from "../helpers/child-server.js";
import { prng } from "../helpers/data.js";
import { type S3rver, startS3rver } from "../helpers/s3.js";

const MiB = 1024 * 1024;
let s3: S3rver;
let work: string;
const servers: ChildServer[] = [];

beforeAll(async () => {
  s3 = await startS3rver();
  work = await mkdtemp(join(tmpdir(), "tessera-remote-backup-"));
});
afterAll(async () => {
  for (const s of servers) await s.kill();
  await s3?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

it("names an S3 store in the manifest without copying it; the restored catalog serves from the bucket", async () => {
  const config = join(work, "tessera.json");
  await writeFile(
    config,
    JSON.stringify({
      stores: { local: { type: "filesystem" }, central: { type: "s3", ...s3.options } },
      defaultStore: "local",
      workers: 1,
      gcIntervalSeconds: 0,
      scrubIntervalSeconds: 0,
    }),
  );
  const a = await startChildServer(join(work, "a"), config);
  servers.push(a);
  const onDisk = Buffer.from(prng(51, 2 * MiB));
  const inBucket = Buffer.from(prng(52, 2 * MiB));
  const sums = new Map([[await uploadImage(a.url, "on disk", onDisk), md5(onDisk)]]);
  const created = await fetch(`${a.url}/v2/images`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "in the bucket", disk_format: "raw", container_format: "bare" }),
  });
  const { id } = (await created.json()) as { id: string };
  const put = await fetch(`${a.url}/v2/images/${id}/file`, {
    method: "PUT",
    headers: { "content-type": "application/octet-stream", "x-image-meta-store": "central" },
    body: new Uint8Array(inBucket),
  });
  expect(put.status).toBe(204);
  sums.set(id, md5(inBucket));

  const to = join(work, "backup");
  const made = await tessera("backup", "--to", to, "--data", join(work, "a"), "--config", config);
  expect(made.status, made.err).toBe(0);
  const stores = (JSON.parse(made.out) as { stores: { name: string; copied: boolean }[] }).stores;
  expect(stores.sort((x, y) => x.name.localeCompare(y.name))).toMatchObject([
    { name: "central", type: "s3", copied: false },
    { name: "local", type: "filesystem", copied: true },
  ]);
  await a.kill();
  servers.length = 0;

  const restored = await tessera("restore", "--from", to, "--data", join(work, "b"), "--config", config);
  expect(restored.status, restored.err).toBe(0);
  const report = JSON.parse(restored.out) as { stores: { name: string; restored: boolean }[] };
  expect(report.stores.find((s) => s.name === "central")).toEqual({ name: "central", restored: false });
  const b = await startChildServer(join(work, "b"), config);
  servers.push(b);
  await expectImagesIntact(b.url, sums);
}, 120_000);
