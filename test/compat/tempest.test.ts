/**
 * Tempest's image API suite (Debian's tempest 33, `tempest.api.image`) against Tessera in
 * Keystone mode, configured as a Glance compared with it would be: a real Keystone whose
 * catalog names Tessera as the image service, dynamic credentials, import on (glance-direct,
 * web-download from a loopback web server, copy-image between two stores), only Glance
 * available. Every test passes or is skipped for a reason Glance's run skips it too
 * (docs/api.md lists them). Tempest 33 uploads random bytes declared vhd or ami: Tessera runs
 * with the format-match rule off for it, as Glance Zed has no such rule (the default stays on).
 * Skipped (saying why) where tempest or Keystone is missing, except in CI.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_FORMAT_POLICY } from "../../src/formats/rules.js";
import { haveGlanceMetadefs } from "../helpers/glance-metadefs.js";
import { KEYSTONE_MISSING, type Keystone, PEOPLE, startKeystone } from "../helpers/keystone.js";
import { startCatalogedTessera } from "../helpers/keystone-tessera.js";
import { cleanUp, runAsync } from "../helpers/run.js";
import type { TestServer } from "../helpers/server.js";
import { onlyFrom, startWebServer, type WebServer } from "../helpers/web.js";

const TEMPEST = "/usr/bin/tempest";
const TEMPEST_MISSING = !existsSync(TEMPEST);
if (TEMPEST_MISSING && process.env.CI) throw new Error("CI must have tempest (.ci/run installs it)");
if (TEMPEST_MISSING) console.warn("skipping tempest's image suite: apt-get install tempest");

/** Tests Glance's own run in this configuration skips too, with the reason tempest gives. */
export const EXPECTED_SKIPS: Record<string, RegExp> = {
  // Neither has the v1 API.
  "tempest.api.image.v1.": /Glance API v1 not supported/,
  // Glance Zed's config has no image cache; image locations are off by default in both.
  "tempest.api.image.v2.admin.test_image_caching.": /not configured with glance caching/,
  "tempest.api.image.v2.test_images.ImageLocationsTest": /show_multiple_locations is not available/,
  // glance-download (Glance 2023.1) and a second region's image service: neither has them.
  "tempest.api.image.v2.test_images.ImportImagesTest.test_image_glance_download_import": /glance-download/,
  "tempest.api.image.v2.test_images.ImportImagesTest.test_remote_": /No image_remote service/,
};

function tempestConf(ks: Keystone, web: WebServer, region: string): string {
  return `[DEFAULT]
log_file = tempest.log
use_stderr = False

[auth]
use_dynamic_credentials = True
admin_username = ${PEOPLE.admin.user}
admin_password = ${PEOPLE.admin.password}
admin_project_name = ${PEOPLE.admin.project}
admin_domain_name = Default
default_credentials_domain_name = Default
create_isolated_networks = False

[identity]
uri_v3 = ${ks.url}
auth_version = v3
region = ${region}
v3_endpoint_type = public
disable_ssl_certificate_validation = True

[identity-feature-enabled]
api_v2 = False

[service_available]
glance = True
nova = False
cinder = False
neutron = False
swift = False

[image]
region = ${region}
endpoint_type = public
catalog_type = image
http_image = ${web.url}/image.raw
build_timeout = 60
build_interval = 1

[image-feature-enabled]
api_v2 = True
api_v1 = False
import_image = True
os_glance_reserved = True

[validation]
run_validation = False
`;
}

interface Result {
  passed: string[];
  skipped: { test: string; reason: string }[];
  failed: string[];
}

/** The outcome of each test, from `tempest run`'s output lines. */
function parse(out: string): Result {
  const r: Result = { passed: [], skipped: [], failed: [] };
  for (const line of out.split("\n")) {
    // A whole class skipped: one line for its setUpClass.
    const cls = /^\{\d+\} setUpClass \((tempest\.[^)]+)\) \.\.\. SKIPPED: (.*)$/.exec(line.trim());
    if (cls) {
      r.skipped.push({ test: cls[1] as string, reason: cls[2] as string });
      continue;
    }
    const m =
      /^\{\d+\} (tempest\.\S+?)(?:\[[^\]]*\])?(?: \[[\d.]+s\])? \.\.\. (ok|SKIPPED|FAILED)(?::\s*(.*))?/.exec(
        line.trim(),
      );
    if (!m) continue;
    const [, test, outcome, reason] = m as unknown as [string, string, string, string | undefined];
    if (outcome === "ok") r.passed.push(test);
    else if (outcome === "SKIPPED") r.skipped.push({ test, reason: reason ?? "" });
    else r.failed.push(test);
  }
  return r;
}

const have = !TEMPEST_MISSING && !KEYSTONE_MISSING && haveGlanceMetadefs();

describe.skipIf(!have)("tempest's image API suite", () => {
  let ks: Keystone;
  let web: WebServer;
  let tessera: TestServer;
  let work: string;
  const region = "RegionOne";

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "tessera-tempest-"));
    ks = await startKeystone();
    web = await startWebServer();
    web.routes.set("/image.raw", { kind: "bytes", data: Buffer.alloc(1024 * 1024, 1) });
    tessera = await startCatalogedTessera(ks, {
      // Named so that the order an import reaches them in is their sorted order: tempest's
      // waiter compares an image's `stores` with the sorted store ids (devstack's names sort so).
      stores: {
        local: { type: "filesystem", description: "local" },
        remote: { type: "filesystem", description: "remote" },
      },
      defaultStore: "local",
      // The loopback web server, and the host of tempest's bad-URL test, which this test's DNS
      // never resolves (nothing leaves loopback), so that its import fails as Glance's does.
      importFilter: {
        ...onlyFrom(web),
        allowedHosts: ["127.0.0.1", "does-not.exist"],
        allowedPorts: [web.port, 80],
      },
      webDownloadResolver: async (host) => {
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
      },
      formats: {
        ...DEFAULT_FORMAT_POLICY,
        rules: { ...DEFAULT_FORMAT_POLICY.rules, "format-mismatch": false },
      },
    });
    // HOME is the test's: tempest records its workspaces in ~/.tempest/workspace.yaml.
    const init = await runAsync(TEMPEST, ["init", join(work, "ws")], { env: { ...process.env, HOME: work } });
    expect(init.status, init.err).toBe(0);
    await mkdir(join(work, "ws", "etc"), { recursive: true });
    await writeFile(join(work, "ws", "etc", "tempest.conf"), tempestConf(ks, web, region));
  }, 240_000);

  afterAll(() =>
    cleanUp(
      () => tessera?.close(),
      () => tessera && rm(tessera.dataDir, { recursive: true, force: true }),
      () => web?.close(),
      () => ks?.stop(),
      () => work && rm(work, { recursive: true, force: true }),
    ),
  );

  it("passes every test, skipping only what Glance skips", { timeout: 1_500_000 }, async () => {
    const run = await runAsync(
      TEMPEST,
      ["run", "--regex", "^tempest\\.api\\.image\\.", "--concurrency", "2"],
      {
        cwd: join(work, "ws"),
        env: { ...process.env, HOME: work, PYTHONWARNINGS: "ignore" },
        timeout: 1_400_000,
      },
    );
    // The whole run, for whoever reads why a test failed (CI keeps test-artifacts/).
    const artifacts = join(import.meta.dirname, "../../test-artifacts");
    await mkdir(artifacts, { recursive: true });
    await writeFile(join(artifacts, "tempest-image.txt"), `${run.out}\n${run.err}`);
    const result = parse(run.out);
    const summary = `passed ${result.passed.length}, skipped ${result.skipped.length}, failed ${result.failed.length}`;
    console.log(`tempest: ${summary}`);
    for (const s of result.skipped) console.log(`  skipped ${s.test}: ${s.reason}`);
    expect(result.failed, `${summary}\n${run.out.slice(-8000)}`).toEqual([]);
    expect(result.passed.length, summary).toBeGreaterThanOrEqual(64);
    const unexpected = result.skipped.filter(
      (s) =>
        !Object.entries(EXPECTED_SKIPS).some(
          ([prefix, why]) => s.test.startsWith(prefix) && why.test(s.reason),
        ),
    );
    expect(unexpected, "skips Glance does not have").toEqual([]);
  });
});
