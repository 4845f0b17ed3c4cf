/**
 * The metadefs API through Debian's glance CLI (python3-glanceclient 4.1, the md-* commands,
 * which are glanceclient's metadefs API, the one Horizon calls): a Glance definition file
 * imported, namespaces listed and shown (with a resource type's prefixes), and objects,
 * properties, tags and resource type associations created, changed and deleted. Debian's
 * openstack CLI (6.0) and openstacksdk (0.101) have no metadefs commands: the openstack CLI
 * part runs only where the installed one has `image metadef namespace`. Skipped (saying why)
 * where the glance CLI is missing, except in CI.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GLANCE_METADEFS, haveGlanceMetadefs } from "../helpers/glance-metadefs.js";
import { runAsync } from "../helpers/run.js";
import { client, sharedServer } from "../helpers/server.js";

const GLANCE = "/usr/bin/glance";
const OPENSTACK = "/usr/bin/openstack";
const haveGlance = existsSync(GLANCE);
if (!haveGlance && process.env.CI)
  throw new Error("CI must have the glance CLI (.ci/run installs python3-glanceclient)");
if (!haveGlance)
  console.warn("skipping the glance CLI's metadefs tests: apt-get install python3-glanceclient");
const have = haveGlance && haveGlanceMetadefs();
// An unknown command still exits 0 (it lists the commands it matches): look for its usage line.
const openstackHasMetadefs =
  existsSync(OPENSTACK) &&
  /usage: openstack image metadef namespace list/.test(
    spawnSync(OPENSTACK, ["image", "metadef", "namespace", "list", "--help"], { encoding: "utf8" }).stdout ??
      "",
  );

const server = sharedServer();
const api = client(() => server().url);
let work = "";

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "tessera-md-cli-"));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function glance(...args: string[]): Promise<string> {
  const res = await runAsync(GLANCE, ["--os-image-url", server().url, "--os-auth-token", "x", ...args], {
    cwd: work,
    env: { ...process.env, HOME: work, PYTHONWARNINGS: "ignore" },
    timeout: 120_000,
  });
  if (res.status !== 0) throw new Error(`glance ${args.join(" ")}: exit ${res.status}: ${res.err}`);
  return res.out;
}

/** The value column of a `| Property | Value |` table row. */
function field(table: string, name: string): string | undefined {
  return new RegExp(`^\\|\\s*${name}\\s*\\|\\s*(.*?)\\s*\\|$`, "m").exec(table)?.[1];
}

/** The first column of a one- or more-column table, header left out. */
function firstColumn(table: string): string[] {
  const rows = table.split("\n").filter((l) => l.startsWith("|"));
  return rows.slice(1).map((l) => (l.split("|")[1] ?? "").trim());
}

describe.skipIf(!have)("glance CLI md-* commands", () => {
  it("imports a Glance definition file, lists and shows namespaces, with a resource type's prefixes", {
    timeout: 120_000,
  }, async () => {
    const imported = await glance(
      "md-namespace-import",
      "--file",
      join(GLANCE_METADEFS, "compute-cpu-pinning.json"),
    );
    expect(field(imported, "namespace")).toBe("OS::Compute::CPUPinning");
    await glance("md-namespace-import", "--file", join(GLANCE_METADEFS, "compute-watchdog.json"));
    expect(firstColumn(await glance("md-namespace-list"))).toEqual(
      expect.arrayContaining(["OS::Compute::CPUPinning", "OS::Compute::Watchdog"]),
    );
    const flavor = await glance("md-namespace-list", "--resource-types", "OS::Nova::Flavor");
    expect(firstColumn(flavor)).toContain("OS::Compute::Watchdog");
    const shown = await glance(
      "md-namespace-show",
      "OS::Compute::CPUPinning",
      "--resource-type",
      "OS::Nova::Flavor",
    );
    expect(field(shown, "properties")).toBe('["hw:cpu_policy", "hw:cpu_thread_policy"]');
    expect(field(shown, "protected")).toBe("True");
    const prop = await glance("md-property-show", "OS::Compute::CPUPinning", "cpu_policy");
    expect(field(prop, "enum")).toBe('["shared", "dedicated"]');
    expect(firstColumn(await glance("md-resource-type-list"))).toEqual(
      expect.arrayContaining(["OS::Glance::Image", "OS::Nova::Flavor", "OS::Cinder::Volume"]),
    );
  });

  it("creates, updates and deletes a namespace and what it holds", { timeout: 180_000 }, async () => {
    const ns = "Tessera::CLI";
    const created = await glance(
      "md-namespace-create",
      ns,
      "--display-name",
      "CLI ns",
      "--visibility",
      "public",
    );
    expect(field(created, "visibility")).toBe("public");
    const updated = await glance("md-namespace-update", ns, "--description", "changed");
    expect(field(updated, "description")).toBe("changed");

    await glance(
      "md-property-create",
      ns,
      "--name",
      "p1",
      "--title",
      "P1",
      "--schema",
      '{"type":"string","enum":["a","b"]}',
    );
    await glance("md-property-update", ns, "p1", "--title", "P one");
    expect(field(await glance("md-property-show", ns, "p1"), "title")).toBe("P one");
    expect(firstColumn(await glance("md-property-list", ns))).toEqual(["p1"]);

    const schema = '{"description":"obj","properties":{"x":{"type":"integer","title":"X"}}}';
    expect(
      field(await glance("md-object-create", ns, "--name", "o1", "--schema", schema), "properties"),
    ).toBe('["x"]');
    expect(field(await glance("md-object-property-show", ns, "o1", "x"), "type")).toBe("integer");
    await glance("md-object-update", ns, "o1", "--name", "o2");
    expect(firstColumn(await glance("md-object-list", ns))).toEqual(["o2"]);

    await glance("md-tag-create", ns, "--name", "t1");
    await glance("md-tag-create-multiple", ns, "--names", "a,b");
    expect(firstColumn(await glance("md-tag-list", ns))).toEqual(["b", "a"]);
    await glance("md-tag-update", ns, "a", "--name", "a2");
    expect(field(await glance("md-tag-show", ns, "a2"), "name")).toBe("a2");
    await glance("md-tag-delete", ns, "a2");

    await glance("md-resource-type-associate", ns, "--name", "OS::Glance::Image", "--prefix", "cli_");
    expect(firstColumn(await glance("md-namespace-resource-type-list", ns))).toEqual(["OS::Glance::Image"]);
    const prefixed = await glance("md-namespace-show", ns, "--resource-type", "OS::Glance::Image");
    expect(field(prefixed, "properties")).toBe('["cli_p1"]');
    await glance("md-resource-type-deassociate", ns, "OS::Glance::Image");

    await glance("md-namespace-objects-delete", ns);
    await glance("md-namespace-properties-delete", ns);
    await glance("md-namespace-tags-delete", ns);
    const emptied = await (await api.get(`/v2/metadefs/namespaces/${ns}`)).json();
    expect(emptied).not.toHaveProperty("objects");
    expect(emptied).not.toHaveProperty("properties");
    expect(emptied).not.toHaveProperty("tags");
    await glance("md-namespace-delete", ns);
    expect((await api.get(`/v2/metadefs/namespaces/${ns}`)).status).toBe(404);
  });

  it.skipIf(!openstackHasMetadefs)(
    "openstack image metadef namespace list / show / create / delete",
    async () => {
      const os = (...args: string[]) =>
        runAsync(
          OPENSTACK,
          ["--os-auth-type", "none", "--os-endpoint", server().url, "image", "metadef", ...args],
          {
            env: { ...process.env, HOME: work, OS_CLOUD: "" },
          },
        );
      expect((await os("namespace", "create", "Tessera::OSC")).status).toBe(0);
      expect((await os("namespace", "list", "-f", "value")).out).toContain("Tessera::OSC");
      expect((await os("namespace", "show", "Tessera::OSC", "-f", "json")).out).toContain("Tessera::OSC");
      expect((await os("namespace", "delete", "Tessera::OSC")).status).toBe(0);
    },
  );
});
