/**
 * `tessera metadefs load` with Glance's own 33 definition files (Debian's glance-common), run
 * beside a serving node: every namespace then lists and shows as the real Glance Zed showed the
 * same files loaded by `glance-manage db load_metadefs` (docs/reference/glance-zed/metadefs),
 * timestamps aside; loading again skips them all; export, unload and load of the export give the
 * same answers back.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN } from "../helpers/child-server.js";
import { GLANCE_METADEFS, haveGlanceMetadefs } from "../helpers/glance-metadefs.js";
import { runAsync } from "../helpers/run.js";
import { client, sharedServer } from "../helpers/server.js";

const REFERENCE = join(import.meta.dirname, "../../docs/reference/glance-zed/metadefs");
const have = haveGlanceMetadefs();
const server = sharedServer();
const api = client(() => server().url);

/** A document without its timestamps, which differ by when each was loaded. */
function timeless(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(timeless);
  if (typeof v !== "object" || v === null) return v;
  return Object.fromEntries(
    Object.entries(v)
      .filter(([k]) => k !== "created_at" && k !== "updated_at")
      .map(([k, x]) => [k, timeless(x)]),
  );
}

const reference = async (file: string) => JSON.parse(await readFile(join(REFERENCE, file), "utf8"));
const tessera = (...args: string[]) =>
  runAsync(process.execPath, [BIN, "metadefs", ...args, "--data", server().dataDir]);
const json = async (path: string) => {
  const res = await api.get(path);
  expect(res.status, path).toBe(200);
  return (await res.json()) as Record<string, unknown>;
};

describe.skipIf(!have)("Glance's metadefs files", () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "tessera-metadefs-files-"));
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("loads all 33 beside a running server, which then lists and shows each as Glance Zed does", async () => {
    const load = await tessera("load", GLANCE_METADEFS);
    expect(load.status, load.err).toBe(0);
    const report = JSON.parse(load.out);
    expect(report.files).toBe(33);
    expect(report.loaded).toHaveLength(33);

    const glanceList = (await reference("namespaces_limit_1000.json")).namespaces as { namespace: string }[];
    const ours = (await json("/v2/metadefs/namespaces?limit=1000")).namespaces as { namespace: string }[];
    const byName = (l: { namespace: string }[]) =>
      Object.fromEntries(l.map((n) => [n.namespace, timeless(n)]));
    expect(byName(ours)).toEqual(byName(glanceList));

    for (const file of (await readdir(REFERENCE)).filter((f) => f.startsWith("show_"))) {
      const want = await reference(file);
      const type = file.match(/@(.*)\.json$/)?.[1]?.replaceAll("_", "::");
      const got = await json(
        `/v2/metadefs/namespaces/${want.namespace}${type ? `?resource_type=${type}` : ""}`,
      );
      expect(timeless(got), file).toEqual(timeless(want));
    }

    const types = (await json("/v2/metadefs/resource_types")).resource_types as { name: string }[];
    const glanceTypes = (await reference("resource_types.json")).resource_types as { name: string }[];
    expect(timeless(types.sort((a, b) => (a.name < b.name ? -1 : 1)))).toEqual(
      timeless(glanceTypes.sort((a, b) => (a.name < b.name ? -1 : 1))),
    );
    // Loaded, never changed: no updated_at, as Glance's column stays NULL.
    expect(ours.every((n) => !("updated_at" in n))).toBe(true);
  });

  it("a second load skips every namespace it has; --merge adds only what one lacks", async () => {
    const again = JSON.parse((await tessera("load", GLANCE_METADEFS)).out);
    expect(again.skipped).toHaveLength(33);
    expect(again.loaded).toEqual([]);
    const del = await api.request("DELETE", "/v2/metadefs/namespaces/OS::Compute::CPUMode/properties");
    expect(del.status).toBe(204);
    expect((await json("/v2/metadefs/namespaces/OS::Compute::CPUMode/properties")).properties).toEqual({});
    const merged = JSON.parse((await tessera("load", GLANCE_METADEFS, "--merge")).out);
    expect(merged.merged).toHaveLength(33);
    const ns = await json("/v2/metadefs/namespaces/OS::Compute::CPUMode");
    expect(timeless(ns)).toEqual(timeless(await reference("show_OS_Compute_CPUMode.json")));
  });

  it("export, unload, then load of the export shows every namespace as before", async () => {
    const before = await json("/v2/metadefs/namespaces/OS::Compute::Libvirt?resource_type=OS::Glance::Image");
    const out = join(work, "export");
    const exported = JSON.parse((await tessera("export", out)).out);
    expect(exported.files).toHaveLength(33);
    expect(JSON.parse((await tessera("unload")).out)).toEqual({ namespaces: 33, resourceTypes: 6 });
    expect((await json("/v2/metadefs/namespaces")).namespaces).toEqual([]);
    expect((await json("/v2/metadefs/resource_types")).resource_types).toEqual([]);
    const reload = await tessera("load", out);
    expect(reload.status, reload.err).toBe(0);
    const after = await json("/v2/metadefs/namespaces/OS::Compute::Libvirt?resource_type=OS::Glance::Image");
    expect(timeless(after)).toEqual(timeless(before));
  });

  it("refuses a file that is not a namespace, naming it, and loads nothing from that directory", async () => {
    const { writeFile, mkdir } = await import("node:fs/promises");
    const dir = join(work, "bad");
    await mkdir(dir);
    await writeFile(join(dir, "a-good.json"), JSON.stringify({ namespace: "Good::One" }));
    await writeFile(
      join(dir, "b-bad.json"),
      JSON.stringify({ namespace: "Bad::One", properties: { p: { title: "no type" } } }),
    );
    const res = await tessera("load", dir);
    expect(res.status).toBe(1);
    expect(res.err).toContain("b-bad.json");
    expect((await api.get("/v2/metadefs/namespaces/Good::One")).status).toBe(404);
    const usage = await tessera("load", dir, "--overwrite");
    expect(usage.status).toBe(2);
  });
});
