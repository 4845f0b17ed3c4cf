/**
 * A Glance with images of every kind, as a cloud that has run for a while has them: three
 * projects' public, private, shared and community images, hidden and protected ones, tags,
 * properties, members of every status; raw and qcow2 data, most of it one base image with
 * small changes (as point releases and tenants' copies of a base are); queued images with no
 * data, deactivated ones, killed ones, and deleted ones Glance no longer shows.
 *
 * Glance Zed reaches `killed` only through failures (a legacy upload cut off), so the killed
 * images are queued ones whose status the test writes into Glance's database, as that failure
 * would have left it.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { prng } from "./data.js";
import { qemuConvert } from "./disk-images.js";
import type { GlancePeer } from "./glance-peer.js";

const MiB = 1024 * 1024;
export const PROJECTS = ["p-alpha", "p-beta", "p-gamma"] as const;
const VISIBILITIES = ["public", "private", "shared", "community"] as const;

export interface Fleet {
  /** Every image Glance lists to an admin. */
  visible: string[];
  /** Killed: Glance shows them by id only, listed to no one. */
  killed: string[];
  /** Deleted in Glance: never to appear in Tessera. */
  deleted: string[];
  /** Ids by kind, for the checks that single one out. */
  shared: string[];
  withData: string[];
}

async function ok(res: Promise<Response>, what: string): Promise<Response> {
  const r = await res;
  if (r.status >= 300) throw new Error(`${what}: ${r.status} ${await r.text()}`);
  return r;
}

/** Base data, and variant `i` of it: a few KiB changed at a place of its own. */
function variant(base: Uint8Array, i: number): Uint8Array {
  const out = Uint8Array.from(base);
  if (i % 8 === 0) return out; // the base itself, as many tenants upload it unchanged
  out.set(prng(1000 + i, 8192), (i * 397 * 1024) % (base.length - 8192));
  return out;
}

export async function makeFleet(glance: GlancePeer, scratch: string): Promise<Fleet> {
  const base = prng(7, 4 * MiB);
  const fleet: Fleet = { visible: [], killed: [], deleted: [], shared: [], withData: [] };
  const create = async (owner: string, body: Record<string, unknown>) => {
    const res = await ok(glance.request("POST", "/v2/images", { project: owner, json: body }), "create");
    return ((await res.json()) as { id: string }).id;
  };
  const upload = (owner: string, id: string, data: Buffer) =>
    ok(glance.request("PUT", `/v2/images/${id}/file`, { project: owner, body: data }), `upload ${id}`);

  for (let i = 0; i < 28; i++) {
    const owner = PROJECTS[i % 3] as string;
    const visibility = VISIBILITIES[i % 4] as string;
    const qcow2 = i % 6 === 5;
    const id = await create(owner, {
      name: `image-${i}`,
      visibility,
      os_hidden: i % 7 === 3,
      protected: i % 5 === 1,
      disk_format: qcow2 ? "qcow2" : "raw",
      container_format: i % 2 === 0 ? "bare" : "ovf",
      min_disk: i % 3,
      min_ram: 128 * (i % 4),
      tags: [`t${i % 4}`, "fleet"],
      os_distro: "debian",
      os_version: `12.${i}`,
      ...(i % 2 === 0 ? { hw_disk_bus: "virtio" } : {}),
    });
    let data = variant(base, i);
    if (qcow2) {
      const raw = join(scratch, `raw-${i}`);
      writeFileSync(raw, data);
      data = readFileSync(qemuConvert(scratch, raw, `image-${i}.qcow2`, "qcow2"));
    }
    await upload(owner, id, Buffer.from(data));
    fleet.visible.push(id);
    fleet.withData.push(id);
    if (visibility === "shared") fleet.shared.push(id);
    // Deactivated by an admin, as for an image found to be compromised.
    if (i % 9 === 4) await ok(glance.request("POST", `/v2/images/${id}/actions/deactivate`), "deactivate");
  }

  // An empty image, active with no bytes.
  const empty = await create("p-alpha", { name: "empty", disk_format: "raw", container_format: "bare" });
  await upload("p-alpha", empty, Buffer.alloc(0));
  fleet.visible.push(empty);
  fleet.withData.push(empty);

  // Queued images (no data), two of them then killed.
  const queued: string[] = [];
  for (let i = 0; i < 6; i++) {
    const owner = PROJECTS[i % 3] as string;
    queued.push(
      await create(owner, {
        name: `queued-${i}`,
        visibility: VISIBILITIES[(i + 1) % 4],
        ...(i % 2 === 0 ? { disk_format: "qcow2", container_format: "bare" } : {}),
      }),
    );
  }
  fleet.killed.push(...queued.slice(0, 2));
  fleet.visible.push(...queued.slice(2));
  killInDatabase(glance, fleet.killed);

  // Deleted images: Glance shows them to no one.
  for (let i = 0; i < 2; i++) {
    const id = await create("p-beta", { name: `deleted-${i}`, disk_format: "raw", container_format: "bare" });
    await upload("p-beta", id, Buffer.from(variant(base, 40 + i)));
    await ok(glance.request("DELETE", `/v2/images/${id}`, { project: "p-beta" }), "delete");
    fleet.deleted.push(id);
  }

  // Members of every status, the status set by the member project as Glance requires.
  for (const [k, id] of fleet.shared.entries()) {
    const owner = await ownerOf(glance, id);
    const others = PROJECTS.filter((p) => p !== owner);
    for (const [j, member] of others.entries()) {
      await ok(
        glance.request("POST", `/v2/images/${id}/members`, { project: owner, json: { member } }),
        "member",
      );
      const status = ["accepted", "rejected", "pending"][(k + j) % 3] as string;
      if (status !== "pending") {
        await ok(
          glance.request("PUT", `/v2/images/${id}/members/${member}`, { project: member, json: { status } }),
          "member status",
        );
      }
    }
  }
  return fleet;
}

async function ownerOf(glance: GlancePeer, id: string): Promise<string> {
  const res = await ok(glance.request("GET", `/v2/images/${id}`), "show");
  return ((await res.json()) as { owner: string }).owner;
}

function killInDatabase(glance: GlancePeer, ids: string[]): void {
  const script = [
    "import sqlite3, sys",
    "c = sqlite3.connect(sys.argv[1])",
    "c.executemany(\"update images set status='killed' where id=?\", [(i,) for i in sys.argv[2:]])",
    "c.commit()",
  ].join("\n");
  execFileSync("/usr/bin/python3", ["-c", script, join(glance.dir, "glance.sqlite"), ...ids]);
}

/** Glance's file store path of an image's data (the peer's single file store). */
export function glanceDataFile(glance: GlancePeer, id: string): string {
  return join(glance.dir, "images", id);
}
