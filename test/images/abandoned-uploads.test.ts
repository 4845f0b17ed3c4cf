/**
 * Uploads cut off by a crash go back to queued, judged by their leases: one whose lease lapsed
 * (its node died) or that has none (written before uploads held leases) is requeued; one whose
 * lease is alive (an upload in progress, on any node) is left alone. On a real LMDB catalog.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { requeueAbandoned } from "../../src/images/abandoned-uploads.js";
import { ImageService } from "../../src/images/images.js";

let dir = "";
let engine: Engine;
let svc: ImageService;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tessera-abandoned-"));
  engine = await Engine.openDir(dir, { durable: false, node: "host-a:/srv/tessera" });
  svc = await ImageService.open(engine);
});
afterEach(async () => {
  await engine.close();
  await rm(dir, { recursive: true, force: true });
});

/** An image left `status` with `lease` recorded, as an upload in progress leaves it. */
async function leftInFlight(status: "saving" | "uploading", lease?: number) {
  const img = await svc.create({ disk_format: "raw", container_format: "bare" });
  await engine.catalog.transact(async (tx) => {
    const rec = await tx.getImage(img.id);
    if (!rec) throw new Error("gone");
    await tx.putImage({ ...rec, status, ...(lease === undefined ? {} : { upload_lease: lease }) }, rec);
  });
  return img.id;
}

const status = async (id: string) => (await svc.records.getImage(id))?.status;

describe("abandoned uploads", () => {
  it("requeues uploads whose lease lapsed or that hold none, and leaves those whose lease is alive", async () => {
    const lapsed = await engine.catalog.beginLease("upload of a node that died", 1);
    const alive = await engine.catalog.beginLease("upload in progress", 60_000);
    await new Promise((r) => setTimeout(r, 10));
    const dead = await leftInFlight("saving", lapsed.id);
    const legacy = await leftInFlight("saving");
    const running = await leftInFlight("saving", alive.id);
    const staging = await leftInFlight("uploading", alive.id);
    const deadStage = await leftInFlight("uploading", lapsed.id);
    expect(await requeueAbandoned(engine.catalog, () => new Date().toISOString())).toBe(3);
    expect(await status(dead)).toBe("queued");
    expect(await status(legacy)).toBe("queued");
    expect(await status(deadStage)).toBe("queued");
    expect(await status(running)).toBe("saving");
    expect(await status(staging)).toBe("uploading");
    expect((await svc.records.getImage(dead))?.upload_lease).toBeUndefined();
    // Its lease ended: the upload is over (a crash after its commit), and it goes back too.
    await engine.catalog.endLease(alive.id);
    expect(await requeueAbandoned(engine.catalog, () => new Date().toISOString())).toBe(2);
  });

  it("counts every lease of a node restarting as dead, its processes lingering or not, and other nodes' as they are", async () => {
    // Taken through this catalog, so held by node host-a:/srv/tessera, by this (live) process.
    const mine = await engine.catalog.beginLease("upload before the restart", 60_000);
    const img = await leftInFlight("saving", mine.id);
    expect(
      await requeueAbandoned(engine.catalog, () => new Date().toISOString(), "host-b:/srv/tessera"),
    ).toBe(0);
    expect(await status(img)).toBe("saving");
    expect(
      await requeueAbandoned(engine.catalog, () => new Date().toISOString(), "host-a:/srv/tessera"),
    ).toBe(1);
    expect(await status(img)).toBe("queued");
  });

  it("records the upload's lease on the image while its bytes flow, and drops it with the commit", async () => {
    const img = await svc.create({ disk_format: "raw", container_format: "bare" });
    let seen: number | null | undefined;
    async function* slow() {
      yield new Uint8Array(1000);
      seen = (await svc.records.getImage(img.id))?.upload_lease;
      yield new Uint8Array(1000);
    }
    const done = await svc.upload(img.id, slow());
    expect(typeof seen).toBe("number");
    expect((await engine.catalog.liveLeases()).map((l) => l.id)).not.toContain(seen);
    expect(done.status).toBe("active");
    expect((await svc.records.getImage(img.id))?.upload_lease).toBeUndefined();
  });
});
