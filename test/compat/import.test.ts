/**
 * Interoperable import with the real clients: `glance image-create-via-import` with
 * glance-direct and web-download, `glance image-import --import-method copy-image --stores`,
 * `openstack image create --import`, and openstacksdk's create_image(use_import=True) and
 * import_image, against a Tessera with two
 * stores whose only web-download source is a web server the test starts on 127.0.0.1.
 */
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runAsync } from "../helpers/run.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { waitFor } from "../helpers/wait.js";
import { onlyFrom, startWebServer, type WebServer } from "../helpers/web.js";

const PY = "/usr/bin/python3";
const GLANCE = "/usr/bin/glance";
const missing = [
  ...(existsSync(GLANCE) ? [] : ["python3-glanceclient"]),
  ...(spawnSync(PY, ["-c", "import openstack"]).status === 0 ? [] : ["python3-openstacksdk"]),
];
if (missing.length > 0 && process.env.CI)
  throw new Error(`CI must have ${missing.join(", ")} (.ci/run installs them)`);
if (missing.length > 0) console.warn(`skipping import client tests: apt-get install ${missing.join(" ")}`);

describe.skipIf(missing.length > 0)("import with the real clients", () => {
  let work: string;
  let web: WebServer;
  let s: TestServer;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "tessera-compat-import-"));
    web = await startWebServer();
    s = await startTestServer({
      stores: {
        local: { type: "filesystem", description: "local file store" },
        extra: { type: "filesystem", description: "second file store" },
      },
      defaultStore: "local",
      importFilter: onlyFrom(web),
    });
  });
  afterAll(async () => {
    await s?.close();
    if (s) await rm(s.dataDir, { recursive: true, force: true });
    await web?.close();
    await rm(work, { recursive: true, force: true });
  });

  /**
   * The glance CLI decides between --file, stdin and no data by whether stdin is a terminal, so
   * it runs from a shell: data from `stdin` (a file), or with stdin closed (no data), as cron would.
   */
  const glanceWith = (stdin: string | undefined, ...args: string[]) =>
    runAsync(
      "sh",
      [
        "-c",
        `exec "$@" ${stdin ? '< "$STDIN_FILE"' : "<&-"}`,
        "sh",
        GLANCE,
        "--os-image-url",
        s.url,
        "--os-auth-token",
        "x",
        ...args,
      ],
      {
        cwd: work,
        env: {
          ...process.env,
          HOME: join(work, "home"),
          OS_CLOUD: "",
          PYTHONWARNINGS: "ignore",
          STDIN_FILE: stdin ?? "",
        },
        timeout: 120_000,
      },
    );
  const glance = (...args: string[]) => glanceWith(undefined, ...args);
  const field = (table: string, name: string) =>
    new RegExp(`\\|\\s*${name}\\s*\\|\\s*([^|]*?)\\s*\\|`).exec(table)?.[1];
  const image = async (id: string) =>
    (await (await fetch(`${s.url}/v2/images/${id}`)).json()) as Record<string, unknown>;
  const settled = (id: string) =>
    waitFor(`image ${id}'s import to settle`, async () => {
      const img = await image(id);
      return img.status !== "importing" && !("os_glance_import_task" in img) && img;
    });

  test("glance image-create-via-import: glance-direct with the data on stdin, web-download from a URI; image-import copy-image; image-tasks", {
    timeout: 180_000,
  }, async () => {
    const data = randomBytes(3 * 1024 * 1024);
    const file = join(work, "direct.raw");
    await writeFile(file, data);
    const direct = await glanceWith(
      file,
      "image-create-via-import",
      "--name",
      "via-direct",
      "--disk-format",
      "raw",
      "--container-format",
      "bare",
      "--import-method",
      "glance-direct",
    );
    expect(direct.status, direct.err).toBe(0);
    const id = field(direct.out, "id") as string;
    const img = await settled(id);
    expect(img).toMatchObject({ status: "active", checksum: createHash("md5").update(data).digest("hex") });

    const webData = randomBytes(1024 * 1024 + 7);
    web.routes.set("/web.raw", { kind: "bytes", data: webData });
    const viaWeb = await glance(
      "image-create-via-import",
      "--name",
      "via-web",
      "--disk-format",
      "raw",
      "--container-format",
      "bare",
      "--import-method",
      "web-download",
      "--uri",
      `${web.url}/web.raw`,
    );
    expect(viaWeb.status, viaWeb.err).toBe(0);
    const webId = field(viaWeb.out, "id") as string;
    expect(await settled(webId)).toMatchObject({ status: "active", size: webData.length });
    const out = join(work, "web.out");
    expect((await glance("image-download", "--file", out, webId)).status).toBe(0);
    expect((await readFile(out)).equals(webData)).toBe(true);

    const copied = await glance("image-import", "--import-method", "copy-image", "--stores", "extra", id);
    expect(copied.status, copied.err).toBe(0);
    expect(await settled(id)).toMatchObject({ status: "active", stores: "local,extra" });
    const tasks = await glance("image-tasks", id);
    expect(tasks.status, tasks.err).toBe(0);
    expect(tasks.out.match(/success/g)?.length).toBe(2);
  });

  test("openstack image create --import: the CLI stages and imports (glance-direct)", {
    timeout: 120_000,
  }, async () => {
    const data = randomBytes(1024 * 1024 + 3);
    const file = join(work, "osc.raw");
    await writeFile(file, data);
    const r = await runAsync(
      "/usr/bin/openstack",
      [
        "--os-auth-type",
        "none",
        "--os-endpoint",
        s.url,
        "image",
        "create",
        "--import",
        "--file",
        file,
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "osc-import",
        "-f",
        "json",
      ],
      {
        cwd: work,
        env: { ...process.env, HOME: join(work, "home"), OS_CLOUD: "", PYTHONWARNINGS: "ignore" },
        timeout: 120_000,
      },
    );
    expect(r.status, r.err).toBe(0);
    const id = (JSON.parse(r.out) as { id: string }).id;
    expect(await settled(id)).toMatchObject({
      status: "active",
      checksum: createHash("md5").update(data).digest("hex"),
    });
    const tasks = (await (await fetch(`${s.url}/v2/images/${id}/tasks`)).json()) as {
      tasks: { input: { import_req: { method: { name: string } } } }[];
    };
    expect(tasks.tasks[0]?.input.import_req.method.name).toBe("glance-direct");
  });

  test("openstacksdk: create_image(use_import=True), import_image web-download and copy-image", async () => {
    web.routes.set("/sdk.raw", { kind: "bytes", data: randomBytes(512 * 1024) });
    const script = new URL("./sdk_import.py", import.meta.url).pathname;
    const r = await runAsync(PY, [script, s.url, work, `${web.url}/sdk.raw`], {
      env: { ...process.env, HOME: join(work, "home"), OS_CLOUD: "", PYTHONWARNINGS: "ignore" },
      timeout: 120_000,
    });
    expect(r.status, r.err).toBe(0);
    const seen = JSON.parse(r.out.trim().split("\n").pop() as string);
    expect(seen.direct.status).toBe("active");
    expect(seen.direct.checksum).toBe(seen.direct.md5);
    expect(seen.web).toEqual({ status: "active", size: 512 * 1024 });
    expect(seen.copied).toEqual(["extra", "local"]);
  });
});
