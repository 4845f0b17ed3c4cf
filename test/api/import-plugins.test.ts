/**
 * The import plugins, as Glance's: image_conversion (every imported image ends up in the
 * configured disk format, converted by qemu-img from a real qcow2) and inject_image_metadata
 * (configured properties on every import, unless the importer has an ignored role).
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { makeRawData, qemuConvert } from "../helpers/disk-images.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { withToken, writeTokens } from "../helpers/tenants.js";
import { haveTools } from "../helpers/tools.js";
import { waitFor } from "../helpers/wait.js";

const MiB = 1024 * 1024;
const run = haveTools(["qemu-img"], "apt-get install qemu-utils");

let dir: string;
let s: TestServer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tessera-import-plugins-"));
  const tokens = await writeTokens(dir, {
    member: { project: "alpha", user: "m", roles: ["member"] },
    admin: { project: "ops", user: "a", roles: ["admin"] },
  });
  s = await startTestServer({
    auth: { mode: "tokens", tokensFile: tokens },
    importPlugins: {
      imageConversion: { outputFormat: "raw" },
      injectMetadata: {
        properties: { hw_origin: "tessera-import", support: "none" },
        ignoreUserRoles: ["admin"],
      },
    },
  });
});
afterAll(async () => {
  await s?.close();
  if (s) await rm(s.dataDir, { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });
});

function as(token: string) {
  return withToken(() => s.url, token);
}

async function importStaged(token: string, data: Buffer, diskFormat: string) {
  const call = as(token);
  const created = await call("POST", "/v2/images", {
    name: "p",
    disk_format: diskFormat,
    container_format: "bare",
  });
  const id = ((await created.json()) as { id: string }).id;
  expect((await call("PUT", `/v2/images/${id}/stage`, data, "application/octet-stream")).status).toBe(204);
  expect((await call("POST", `/v2/images/${id}/import`, { method: { name: "glance-direct" } })).status).toBe(
    202,
  );
  const img = await waitFor(`image ${id}'s import to settle`, async () => {
    const img = (await (await call("GET", `/v2/images/${id}`)).json()) as Record<string, unknown>;
    return img.status !== "importing" && !("os_glance_import_task" in img) && img;
  });
  return { id, img };
}

describe.skipIf(!run)("image_conversion", () => {
  test("a qcow2 imported by a member ends up raw: disk_format, size, virtual size and bytes are qemu-img's raw", async () => {
    const raw = makeRawData(dir, "disk.raw", 3 * MiB);
    const qcow2 = qemuConvert(dir, raw, "disk.qcow2", "qcow2");
    const { id, img } = await importStaged("member-token", readFileSync(qcow2), "qcow2");
    expect(img).toMatchObject({ status: "active", disk_format: "raw", size: 3 * MiB, virtual_size: 3 * MiB });
    const got = Buffer.from(await (await as("member-token")("GET", `/v2/images/${id}/file`)).arrayBuffer());
    expect(got.equals(readFileSync(raw))).toBe(true);
    // inject_image_metadata: the member's import carries the configured properties.
    expect(img).toMatchObject({ hw_origin: "tessera-import", support: "none" });
  });

  test("an image already in the output format is not converted; an admin's import gets no injected properties", async () => {
    const raw = readFileSync(makeRawData(dir, "plain.raw", MiB, 7));
    const { img } = await importStaged("admin-token", raw, "raw");
    expect(img).toMatchObject({ status: "active", disk_format: "raw", size: MiB });
    expect(img).not.toHaveProperty("hw_origin");
  });

  test("staged bytes that are not the declared format fail the conversion: task failed, image queued", async () => {
    const { id, img } = await importStaged("member-token", Buffer.alloc(MiB, 1), "qcow2");
    expect(img.status).toBe("queued");
    const tasks = (await (await as("member-token")("GET", `/v2/images/${id}/tasks`)).json()) as {
      tasks: { status: string; message: string }[];
    };
    expect(tasks.tasks[0]?.status).toBe("failure");
    expect(tasks.tasks[0]?.message).not.toBe("");
  });
});
