/**
 * Horizon (Debian's openstack-dashboard) against Tessera, driven in Debian's chromium through
 * playwright-core: a real Keystone whose catalog names Tessera as the image service, Glance's
 * metadefs files loaded with `tessera metadefs load`, the dashboard on loopback
 * (.ci/horizon.sh). As a member: the Images panel lists the project's images; an image is
 * created from a file with a property picked from the loaded metadata catalog, edited, shown
 * (size and checksum) and deleted. As an admin: "Update Metadata" shows the loaded namespaces
 * and saves a property; the Metadata Definitions panel lists the namespaces (paging included)
 * and imports one. Horizon's own policy file gives "Update Metadata" to admins only
 * (modify_metadef_object), as with Glance: a member picks metadata in the create form instead.
 * Screenshots of each step go to test-artifacts/horizon/. Skipped (saying why) where Horizon,
 * chromium, Keystone or Glance's metadefs files are missing, except in CI.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { haveGlanceMetadefs } from "../helpers/glance-metadefs.js";
import {
  type Identity,
  KEYSTONE_MISSING,
  type Keystone,
  PEOPLE,
  startKeystone,
} from "../helpers/keystone.js";
import { startCatalogedTessera } from "../helpers/keystone-tessera.js";
import { freePort } from "../helpers/ports.js";
import { cleanUp, runAsync } from "../helpers/run.js";
import type { TestServer } from "../helpers/server.js";

const CHROMIUM = "/usr/bin/chromium";
const HORIZON = "/usr/share/openstack-dashboard/manage.py";
const SCRIPT = new URL("../../.ci/horizon.sh", import.meta.url).pathname;
const SHOTS = new URL("../../test-artifacts/horizon/", import.meta.url).pathname;
const missing = [CHROMIUM, HORIZON].filter((p) => !existsSync(p));
if (missing.length > 0 && process.env.CI)
  throw new Error(`CI must have ${missing.join(", ")} (.ci/run installs them)`);
if (missing.length > 0)
  console.warn(
    `skipping Horizon: missing ${missing.join(", ")} (apt-get install chromium openstack-dashboard)`,
  );
const have = missing.length === 0 && !KEYSTONE_MISSING && haveGlanceMetadefs();

const DISK = Buffer.alloc(2 * 1024 * 1024, 3);

describe.skipIf(!have)("Horizon against Tessera, in chromium", () => {
  let ks: Keystone;
  let tessera: TestServer;
  let work: string;
  let horizon: string;
  let browser: Browser;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "tessera-horizon-"));
    await mkdir(SHOTS, { recursive: true });
    await writeFile(join(work, "disk.raw"), DISK);
    ks = await startKeystone();
    tessera = await startCatalogedTessera(ks);
    const started = await runAsync("bash", [
      SCRIPT,
      "start",
      join(work, "horizon"),
      ks.url,
      String(await freePort()),
    ]);
    expect(started.status, started.err).toBe(0);
    horizon = started.out.trim().split("\n").pop() as string;
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  }, 300_000);

  afterAll(() =>
    cleanUp(
      () => work && runAsync("bash", [SCRIPT, "stop", join(work, "horizon")]),
      () => browser?.close(),
      () => tessera?.close(),
      () => tessera && rm(tessera.dataDir, { recursive: true, force: true }),
      () => ks?.stop(),
      () => work && rm(work, { recursive: true, force: true }),
    ),
  );

  /** A fresh browser page logged in as `who`. */
  async function login(who: Identity): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${horizon}/auth/login/`);
    await page.fill("#id_username", who.user);
    await page.fill("#id_password", who.password);
    await page.click("#loginBtn");
    await page.waitForURL((u) => !u.pathname.startsWith("/auth/login"), { timeout: 60_000 });
    return page;
  }

  /** Tessera's answer for `path`, as `who` through a Keystone token. */
  async function api(who: Identity, path: string): Promise<Response> {
    const { token } = await ks.token(who);
    return fetch(`${tessera.url}${path}`, { headers: { "X-Auth-Token": token, Accept: "application/json" } });
  }

  async function imageNamed(who: Identity, name: string): Promise<Record<string, unknown> | undefined> {
    const list = (await (await api(who, `/v2/images?name=${name}`)).json()) as {
      images: Record<string, unknown>[];
    };
    return list.images[0];
  }

  const shot = (page: Page, name: string) =>
    page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

  /** Opens the row action `action` of the image named `name` in the Images panel. */
  async function rowAction(page: Page, name: string, action: string): Promise<void> {
    const row = page.locator("tr", { hasText: name }).filter({ hasText: "Active" }).first();
    await row.waitFor({ timeout: 60_000 });
    await row.locator("button.split-caret").click();
    await row.getByRole("menuitem", { name: action }).click();
  }

  /** In an open metadata tree: adds namespace `ns`'s property `label`, set to `value`. */
  async function pickMetadata(page: Page, ns: string, label: string, value: string): Promise<void> {
    const modal = page.locator(".modal").first();
    const item = modal.locator("li.list-group-item", { hasText: ns });
    await item.waitFor({ timeout: 60_000 });
    await item.click();
    await modal.locator("li.list-group-item", { hasText: label }).first().locator("a.btn").click();
    await modal.locator('select[name="property"]').selectOption({ label: value });
  }

  it("as a member: lists, creates from a file with catalog metadata, edits, shows and deletes an image", {
    timeout: 300_000,
  }, async () => {
    const demo = PEOPLE.demo;
    const { token } = await ks.token(demo);
    const made = await fetch(`${tessera.url}/v2/images`, {
      method: "POST",
      headers: { "X-Auth-Token": token, "Content-Type": "application/json" },
      body: JSON.stringify({ name: "made-by-the-api", disk_format: "raw", container_format: "bare" }),
    });
    expect(made.status).toBe(201);

    const page = await login(demo);
    await page.goto(`${horizon}/project/images`);
    await page.locator("tr", { hasText: "made-by-the-api" }).first().waitFor({ timeout: 60_000 });
    await shot(page, "1-member-images");

    await page.getByRole("button", { name: "Create Image" }).click();
    await page.locator("#imageForm-name").waitFor();
    await page.fill("#imageForm-name", "from-horizon");
    const [chooser] = await Promise.all([
      page.waitForEvent("filechooser"),
      page.click("#imageForm-image_file"),
    ]);
    await chooser.setFiles(join(work, "disk.raw"));
    await page.selectOption("#imageForm-format", "string:raw");
    await page.click("button.next");
    // The metadata step lists Glance's loaded namespaces, with the image prefix (hw_) applied.
    await pickMetadata(page, "Watchdog Behavior", "Watchdog Action", "reset");
    await page.locator(".modal").first().getByText("hw_watchdog_action").first().waitFor();
    await shot(page, "2-member-create-metadata");
    await page.click("button.finish");
    await page
      .locator("tr", { hasText: "from-horizon" })
      .filter({ hasText: "Active" })
      .first()
      .waitFor({ timeout: 60_000 });
    const created = await imageNamed(demo, "from-horizon");
    expect(created).toMatchObject({
      status: "active",
      size: DISK.length,
      disk_format: "raw",
      checksum: createHash("md5").update(DISK).digest("hex"),
      hw_watchdog_action: "reset",
    });
    await shot(page, "3-member-created");

    await rowAction(page, "from-horizon", "Edit Image");
    await page.locator("#imageForm-name").waitFor();
    await page.fill("#imageForm-name", "edited-in-horizon");
    await page.click("button.finish");
    await page.locator("tr", { hasText: "edited-in-horizon" }).first().waitFor({ timeout: 60_000 });
    expect((await imageNamed(demo, "edited-in-horizon"))?.id).toBe(created?.id);

    await page.locator("a", { hasText: "edited-in-horizon" }).first().click();
    await page
      .getByText(created?.checksum as string)
      .first()
      .waitFor({ timeout: 60_000 });
    await page.getByText("2.00 MB").first().waitFor();
    await shot(page, "4-member-details");

    await page.goto(`${horizon}/project/images`);
    await rowAction(page, "edited-in-horizon", "Delete Image");
    await page.locator(".modal").first().getByRole("button", { name: "Delete Image" }).click();
    await expect
      .poll(() => page.locator("tr", { hasText: "edited-in-horizon" }).count(), { timeout: 60_000 })
      .toBe(0);
    expect((await api(demo, `/v2/images/${created?.id}`)).status).toBe(404);
    await shot(page, "5-member-deleted");
    await page.close();
  });

  it("as an admin: the Metadata Definitions panel lists and imports a namespace, and Update Metadata saves one of its properties", {
    timeout: 300_000,
  }, async () => {
    const admin = PEOPLE.admin;
    const page = await login(admin);
    await page.goto(`${horizon}/admin/metadata_defs/`);
    await page.locator("tr", { hasText: "CPU Pinning" }).first().waitFor({ timeout: 60_000 });
    await shot(page, "6-admin-metadata-definitions");

    await page.getByRole("link", { name: "Import Namespace" }).click();
    const form = page.locator(".modal").first();
    // Horizon's themed select hides the real one: set it as its script would.
    await form.locator("#id_source_type").evaluate((el) => {
      (el as HTMLSelectElement).value = "raw";
      el.dispatchEvent(new Event("change", { bubbles: true }));
    });
    const ns = {
      namespace: "Tessera::Horizon",
      display_name: "Tessera from Horizon",
      description: "imported in a browser",
      properties: { tessera_color: { type: "string", title: "Color", enum: ["red", "blue"] } },
      resource_type_associations: [{ name: "OS::Glance::Image" }],
    };
    await form.locator("#id_direct_input").fill(JSON.stringify(ns));
    await form.locator('input[type="submit"]').click();
    await page.getByText("Namespace Tessera::Horizon has been created.").first().waitFor({ timeout: 60_000 });
    expect((await api(admin, "/v2/metadefs/namespaces/Tessera::Horizon")).status).toBe(200);
    // Twenty to a page, by name: it is on the second, through Tessera's marker.
    await page.locator("tfoot").getByRole("link", { name: /Next/ }).click();
    await page.locator("tr", { hasText: "Tessera from Horizon" }).first().waitFor({ timeout: 60_000 });
    await shot(page, "7-admin-imported");

    const { token } = await ks.token(admin);
    const made = await fetch(`${tessera.url}/v2/images`, {
      method: "POST",
      headers: { "X-Auth-Token": token, "Content-Type": "application/json" },
      body: JSON.stringify({ name: "admin-image", disk_format: "raw", container_format: "bare" }),
    });
    const { id } = (await made.json()) as { id: string };
    const put = await fetch(`${tessera.url}/v2/images/${id}/file`, {
      method: "PUT",
      headers: { "X-Auth-Token": token, "Content-Type": "application/octet-stream" },
      body: new Uint8Array(DISK),
    });
    expect(put.status).toBe(204);
    await page.goto(`${horizon}/project/images`);
    await rowAction(page, "admin-image", "Update Metadata");
    await pickMetadata(page, "Tessera from Horizon", "Color", "blue");
    await shot(page, "8-admin-update-metadata");
    await page.locator(".modal").first().getByRole("button", { name: "Save" }).click();
    await expect
      .poll(async () => (await imageNamed(admin, "admin-image"))?.tessera_color, { timeout: 60_000 })
      .toBe("blue");
    await page.close();
  });
});
