/**
 * Compatibility with the real OpenStack clients, as Debian ships them: the glance CLI
 * (python3-glanceclient), the openstack CLI (python3-openstackclient) and openstacksdk, each
 * driven against a Tessera server this file starts. The glance CLI runs with no edit to its
 * cached schema. Skipped (saying why) where the clients are not installed, except in CI,
 * where .ci/run installs them and their absence fails.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prng } from "../helpers/data.js";
import { makeBackedQcow2, qemuCreate } from "../helpers/disk-images.js";
import { runAsync } from "../helpers/run.js";
import { client, sharedServer } from "../helpers/server.js";

const PY = "/usr/bin/python3";
const tools = {
  glance: "/usr/bin/glance",
  openstack: "/usr/bin/openstack",
};
const missing = [
  ...Object.values(tools).filter((t) => !existsSync(t)),
  ...(spawnSync(PY, ["-c", "import openstack"]).status === 0 ? [] : ["python3-openstacksdk"]),
];
if (missing.length > 0 && process.env.CI) {
  throw new Error(
    `CI must have the OpenStack clients (.ci/run installs them); missing: ${missing.join(", ")}`,
  );
}
if (missing.length > 0) {
  console.warn(
    `skipping client compatibility tests: missing ${missing.join(", ")} (apt-get install python3-glanceclient python3-openstackclient python3-openstacksdk)`,
  );
}

// Two stores, as Glance's multi-store: the clients' store commands have something to act on.
const server = sharedServer({
  stores: {
    local: { type: "filesystem", description: "local file store" },
    extra: { type: "filesystem", description: "second file store" },
  },
  defaultStore: "local",
});
const api = client(() => server().url);
let work = "";
let home = "";

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "tessera-compat-"));
  // A fresh HOME: the glance CLI caches the server's schema under ~/.glanceclient.
  home = join(work, "home");
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/**
 * Runs a client asynchronously (the server under test lives in this same process), with stdin
 * closed: the glance CLI reads image data from a stdin that is not a terminal.
 */
function run(cmd: string, args: string[]) {
  return runAsync(cmd, args, {
    cwd: work,
    env: { ...process.env, HOME: home, OS_CLOUD: "", PYTHONWARNINGS: "ignore" },
    timeout: 120_000,
  });
}

const glance = (...args: string[]) =>
  run(tools.glance, ["--os-image-url", server().url, "--os-auth-token", "anything", ...args]);
const openstack = (...args: string[]) =>
  run(tools.openstack, ["--os-auth-type", "none", "--os-endpoint", server().url, ...args]);

/** The value column of a `| Property | Value |` table row. */
function field(table: string, name: string): string | undefined {
  const m = new RegExp(`^\\|\\s*${name}\\s*\\|\\s*(.*?)\\s*\\|$`, "m").exec(table);
  return m?.[1];
}

const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

describe.skipIf(missing.length > 0)("real OpenStack clients", () => {
  it("glance CLI: create with --progress, list with filters and pages, show, update, tag, download, deactivate, delete", {
    timeout: 300_000,
  }, async () => {
    const data = prng(1, 5 * 1024 * 1024 + 3);
    await writeFile(join(work, "g.raw"), data);
    const created = await glance(
      "image-create",
      "--name",
      "cli-demo",
      "--disk-format",
      "raw",
      "--container-format",
      "bare",
      "--file",
      join(work, "g.raw"),
      "--property",
      "os_distro=debian",
      "--progress",
    );
    expect(created.status, created.err).toBe(0);
    expect(created.err).not.toContain("conflicting option string");
    const id = field(created.out, "id") as string;
    expect(field(created.out, "status")).toBe("active");
    expect(field(created.out, "checksum")).toBe(md5(data));
    expect(field(created.out, "size")).toBe(String(data.length));
    expect(field(created.out, "os_distro")).toBe("debian");

    for (let i = 0; i < 5; i++) {
      const r = await glance(
        "image-create",
        "--name",
        `page-${i}`,
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
      );
      expect(r.status, r.err).toBe(0);
      expect((await glance("image-tag-update", field(r.out, "id") as string, "paged")).status).toBe(0);
    }
    const paged = await glance(
      "image-list",
      "--tag",
      "paged",
      "--page-size",
      "2",
      "--sort-key",
      "name",
      "--sort-dir",
      "asc",
    );
    expect(paged.status, paged.err).toBe(0);
    expect([...paged.out.matchAll(/\| (page-\d) /g)].map((m) => m[1])).toEqual(
      [0, 1, 2, 3, 4].map((i) => `page-${i}`),
    );
    const limited = await glance(
      "image-list",
      "--limit",
      "2",
      "--sort-key",
      "name",
      "--sort-dir",
      "desc",
      "--tag",
      "paged",
    );
    expect([...limited.out.matchAll(/\| (page-\d) /g)].map((m) => m[1])).toEqual(["page-4", "page-3"]);
    const byName = await glance("image-list", "--property-filter", "name=cli-demo");
    expect(byName.out).toContain(id);
    expect(byName.out).not.toContain("page-0");

    const updated = await glance(
      "image-update",
      id,
      "--name",
      "cli-renamed",
      "--min-ram",
      "512",
      "--property",
      "hw_disk_bus=virtio",
    );
    expect(updated.status, updated.err).toBe(0);
    expect(field(updated.out, "name")).toBe("cli-renamed");
    expect(field(updated.out, "min_ram")).toBe("512");
    expect(field(updated.out, "hw_disk_bus")).toBe("virtio");
    const removed = await glance("image-update", id, "--remove-property", "hw_disk_bus");
    expect(removed.status, removed.err).toBe(0);
    expect(field(removed.out, "hw_disk_bus")).toBeUndefined();

    expect((await glance("image-tag-update", id, "golden")).status).toBe(0);
    expect(field((await glance("image-show", id)).out, "tags")).toContain("golden");
    expect((await glance("image-tag-delete", id, "golden")).status).toBe(0);
    expect(field((await glance("image-show", id)).out, "tags")).not.toContain("golden");

    // The CLI checks the md5 of what it downloads against the image's checksum.
    const dl = await glance("image-download", id, "--file", join(work, "g.out"), "--progress");
    expect(dl.status, dl.err).toBe(0);
    expect((await readFile(join(work, "g.out"))).equals(Buffer.from(data))).toBe(true);

    expect((await glance("image-deactivate", id)).status).toBe(0);
    expect(field((await glance("image-show", id)).out, "status")).toBe("deactivated");
    expect((await glance("image-reactivate", id)).status).toBe(0);
    expect(field((await glance("image-show", id)).out, "status")).toBe("active");

    expect((await glance("image-delete", id)).status).toBe(0);
    const gone = await glance("image-show", id);
    expect(gone.status).not.toBe(0);
    expect(gone.err).toContain("404");
  });

  it("openstack CLI: image create, list, show, set, save, deactivate, delete", {
    timeout: 300_000,
  }, async () => {
    const data = prng(2, 2 * 1024 * 1024 + 5);
    await writeFile(join(work, "o.raw"), data);
    const created = await openstack(
      "image",
      "create",
      "--disk-format",
      "raw",
      "--container-format",
      "bare",
      "--file",
      join(work, "o.raw"),
      "--property",
      "foo=bar",
      "--tag",
      "t1",
      "osc-demo",
      "-f",
      "json",
    );
    expect(created.status, created.err).toBe(0);
    const id = (JSON.parse(created.out) as { id: string }).id;
    const shown = await openstack("image", "show", id, "-f", "json");
    expect(shown.status, shown.err).toBe(0);
    expect(JSON.parse(shown.out)).toMatchObject({
      status: "active",
      size: data.length,
      checksum: md5(data),
      tags: ["t1"],
      name: "osc-demo",
    });
    const listed = await openstack("image", "list", "--name", "osc-demo", "--long", "-f", "json");
    expect(JSON.parse(listed.out)).toEqual([
      expect.objectContaining({ ID: id, Size: data.length, Checksum: md5(data) }),
    ]);
    const sorted = await openstack(
      "image",
      "list",
      "--limit",
      "2",
      "--sort",
      "name:asc",
      "--status",
      "active",
      "-f",
      "json",
    );
    expect(sorted.status, sorted.err).toBe(0);
    expect(JSON.parse(sorted.out).length).toBeLessThanOrEqual(2);

    const set = await openstack(
      "image",
      "set",
      "--property",
      "hw_scsi_model=virtio-scsi",
      "--tag",
      "t2",
      "--min-disk",
      "3",
      id,
    );
    expect(set.status, set.err).toBe(0);
    const after = JSON.parse((await openstack("image", "show", id, "-f", "json")).out);
    expect(after.properties.hw_scsi_model).toBe("virtio-scsi");
    expect(after.min_disk).toBe(3);
    expect(after.tags.sort()).toEqual(["t1", "t2"]);

    const saved = await openstack("image", "save", "--file", join(work, "o.out"), id);
    expect(saved.status, saved.err).toBe(0);
    expect((await readFile(join(work, "o.out"))).equals(Buffer.from(data))).toBe(true);

    expect((await openstack("image", "set", "--deactivate", id)).status).toBe(0);
    expect(JSON.parse((await openstack("image", "show", id, "-f", "json")).out).status).toBe("deactivated");
    expect((await openstack("image", "set", "--activate", id)).status).toBe(0);
    expect((await openstack("image", "delete", id)).status).toBe(0);
    expect((await api.get(`/v2/images/${id}`)).status).toBe(404);
  });

  it("openstacksdk: create with upload, paginated and sorted listing, update, tags, verified download, deactivate, delete, the stores", async () => {
    const script = new URL("./sdk_client.py", import.meta.url).pathname;
    const r = await run(PY, [script, server().url, work]);
    expect(r.status, r.err).toBe(0);
    const out = JSON.parse(r.out.trim().split("\n").pop() as string);
    expect(out.created.status).toBe("active");
    expect(out.created.checksum).toBe(out.created.md5);
    expect(out.created.hash_algo).toBe("sha512");
    expect(out.created.hash_value).toBe(out.created.sha512);
    expect(out.paged).toEqual([0, 1, 2, 3, 4, 5].map((i) => `sdk-page-${i}`));
    expect(out.by_name).toHaveLength(1);
    expect(out.sorted).toEqual([5, 4, 3, 2, 1, 0].map((i) => `sdk-page-${i}`));
    expect(out.updated).toEqual({ min_ram: 256, hw_disk_bus: "virtio", name: "sdk-renamed" });
    expect(out.tags).toEqual(["extra"]);
    expect(out.downloaded_sha512).toBe(out.created.sha512);
    expect(out.deactivated).toBe("deactivated");
    expect(out.reactivated).toBe("active");
    expect(out.after_delete).toBeNull();
    expect(out.stores).toEqual([
      ["local", true, "local file store"],
      ["extra", false, "second file store"],
    ]);
  });

  it("glance and openstack CLIs: a real qcow2 gets its virtual_size; one with a backing file is refused naming the rule and stays queued", {
    timeout: 120_000,
  }, async () => {
    const good = qemuCreate(work, "real.qcow2", "qcow2", 64 * 1024 * 1024);
    const created = await glance(
      "image-create",
      "--name",
      "real-qcow2",
      "--disk-format",
      "qcow2",
      "--container-format",
      "bare",
      "--file",
      good,
    );
    expect(created.status, created.err).toBe(0);
    expect(field(created.out, "status")).toBe("active");
    expect(field(created.out, "virtual_size")).toBe(String(64 * 1024 * 1024));

    const evil = makeBackedQcow2(work, "evil.qcow2", 1024 * 1024);
    const refused = await glance(
      "image-create",
      "--name",
      "evil",
      "--disk-format",
      "qcow2",
      "--container-format",
      "bare",
      "--file",
      evil,
    );
    expect(refused.status).not.toBe(0);
    expect(refused.err).toContain("400");
    expect(refused.err).toContain("qcow2-backing-file");
    const shown = await openstack("image", "show", "evil", "-f", "json");
    expect(shown.status, shown.err).toBe(0);
    const evilImage = JSON.parse(shown.out) as { status: string; size?: number | null };
    expect(evilImage.status).toBe("queued");
    expect(evilImage.size ?? null).toBeNull(); // the openstack CLI leaves out unset fields
  });

  it("glance CLI: stores-info lists the stores, image-create --store uploads into one, stores-delete removes a copy", {
    timeout: 120_000,
  }, async () => {
    const info = await glance("stores-info");
    expect(info.status, info.err).toBe(0);
    expect(info.out).toMatch(/local[\s\S]*default[\s\S]*extra|extra[\s\S]*local/);
    const file = join(work, "stores.bin");
    const data = prng(31, 3 * 1024 * 1024);
    await writeFile(file, data);
    const created = await glance(
      "image-create",
      "--name",
      "in-extra",
      "--disk-format",
      "raw",
      "--container-format",
      "bare",
      "--file",
      file,
      "--store",
      "extra",
    );
    expect(created.status, created.err).toBe(0);
    const id = field(created.out, "id") as string;
    expect(field(created.out, "stores")).toBe("extra");
    // Its only store: refused, as Glance refuses.
    const refused = await glance("stores-delete", "--store", "extra", id);
    expect(refused.status).not.toBe(0);
    expect(refused.err).toContain("403");
    // A copy in the default store (the import issue will expose copy-image over HTTP), then
    // the one in extra removed: the image is served from local, byte for byte.
    await server().images.copyToStore(id, "local");
    expect(field((await glance("image-show", id)).out, "stores")).toBe("extra,local");
    const removed = await glance("stores-delete", "--store", "extra", id);
    expect(removed.status, removed.err).toBe(0);
    expect(field((await glance("image-show", id)).out, "stores")).toBe("local");
    const out = join(work, "stores.out");
    expect((await glance("image-download", id, "--file", out)).status).toBe(0);
    expect(md5(await readFile(out))).toBe(md5(data));
  });
});
