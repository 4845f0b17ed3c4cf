/**
 * The metadefs API's namespaces and resource types over real HTTP, with static tokens: shapes,
 * statuses and messages as the real Glance Zed answered them (recorded exchanges), and its
 * policy (reads for readers of public or their own namespaces, writes for admins).
 */
import { describe, expect, it } from "vitest";
import { errorOf, expectJson, metadefServer } from "../helpers/metadef-tenants.js";

const { as } = metadefServer();
const admin = as("admin");
const NS = "/v2/metadefs/namespaces";

const TEST_NS = {
  namespace: "Tessera::Test",
  display_name: "Tessera Test",
  description: "test ns",
  visibility: "private",
  protected: false,
  properties: { zz: { type: "string", title: "ZZ" }, p1: { type: "integer", title: "P1", default: 5 } },
  objects: [{ name: "o1", required: ["x"], properties: { x: { type: "integer", title: "X" } } }],
  tags: [{ name: "t1" }],
  resource_type_associations: [{ name: "OS::Glance::Image", prefix: "tt_" }],
};

async function create(body: Record<string, unknown>) {
  return expectJson(await admin("POST", NS, body), 201);
}

describe("metadefs namespaces", () => {
  it("creates a namespace with its contents and shows it as Glance does: owner the caller's project, sorted properties, string defaults", async () => {
    const res = await admin("POST", NS, TEST_NS);
    expect(res.headers.get("location")).toMatch(/\/v2\/metadefs\/namespaces\/Tessera::Test$/);
    await expectJson(res, 201);
    const ns = await expectJson(await admin("GET", `${NS}/Tessera::Test`), 200);
    expect(ns).toMatchObject({
      namespace: "Tessera::Test",
      visibility: "private",
      protected: false,
      owner: "ops",
      resource_type_associations: [{ name: "OS::Glance::Image", prefix: "tt_" }],
      properties: { p1: { type: "integer", title: "P1", default: "5" }, zz: { type: "string", title: "ZZ" } },
      objects: [
        {
          name: "o1",
          required: ["x"],
          self: `${NS}/Tessera::Test/objects/o1`,
          schema: "/v2/schemas/metadefs/object",
        },
      ],
      tags: [{ name: "t1" }],
      self: `${NS}/Tessera::Test`,
      schema: "/v2/schemas/metadefs/namespace",
    });
    expect(Object.keys(ns.properties as object)).toEqual(["p1", "zz"]);
    expect(ns.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(ns.updated_at).toBe(ns.created_at);
  });

  it("?resource_type= prefixes the properties, the objects' properties and their required names; an unassociated type changes nothing", async () => {
    const ns = await expectJson(
      await admin("GET", `${NS}/Tessera::Test?resource_type=OS::Glance::Image`),
      200,
    );
    expect(Object.keys(ns.properties as object)).toEqual(["tt_p1", "tt_zz"]);
    expect(ns.objects).toMatchObject([{ required: ["tt_x"], properties: { tt_x: { title: "X" } } }]);
    const plain = await expectJson(
      await admin("GET", `${NS}/Tessera::Test?resource_type=OS::Nova::Flavor`),
      200,
    );
    expect(Object.keys(plain.properties as object)).toEqual(["p1", "zz"]);
  });

  it("refuses a duplicate (409), read-only attributes (403), unknown keys and bad values (400), with Glance's messages", async () => {
    expect(await errorOf(await admin("POST", NS, TEST_NS), 409)).toBe(
      "The metadata definition namespace=Tessera::Test already exists.",
    );
    expect(
      await errorOf(await admin("POST", NS, { namespace: "X::RO", created_at: "2020-01-01T00:00:00Z" }), 403),
    ).toBe("Attribute 'created_at' is read-only.");
    expect(await errorOf(await admin("POST", NS, { namespace: "X::U", bogus_key: 1 }), 400)).toBe(
      "Provided object does not match schema 'namespace': Additional properties are not allowed ('bogus_key' was unexpected)",
    );
    expect(await errorOf(await admin("POST", NS, { display_name: "x" }), 400)).toBe(
      "Provided object does not match schema 'namespace': 'namespace' is a required property",
    );
    await errorOf(await admin("POST", NS, { namespace: "X::V", visibility: "bogus" }), 400);
    await errorOf(await admin("POST", NS, { namespace: "X::T", properties: { p: { title: "P" } } }), 400);
    await errorOf(await admin("POST", NS, { namespace: "a".repeat(81) }), 400);
    expect((await admin("GET", `${NS}/X::U`)).status).toBe(404);
  });

  it("refuses, with 400 and nothing written, bodies that are not objects, nameless or overlong nested items, empty names and NUL anywhere", async () => {
    for (const body of [null, [], "x", [1]]) await errorOf(await admin("POST", NS, body), 400);
    await errorOf(await admin("PUT", `${NS}/Tessera::Test`, []), 400);
    const bad = [
      { namespace: "" },
      { namespace: "R1", resource_type_associations: [{}] },
      { namespace: "R2", objects: [{}] },
      { namespace: "R3", tags: [{}] },
      { namespace: "R4", resource_type_associations: [{ name: "x".repeat(3000) }] },
      { namespace: "n\u0000ul" },
      { namespace: "R5", description: "a\u0000b" },
    ];
    for (const body of bad) await errorOf(await admin("POST", NS, body), 400);
    const listed = await expectJson(await admin("GET", `${NS}?limit=1000`), 200);
    const names = (listed.namespaces as { namespace: string }[]).map((n) => n.namespace);
    for (const n of ["", "R1", "R2", "R3", "R4", "R5"]) expect(names).not.toContain(n);
    await errorOf(await admin("GET", `${NS}/a%00b`), 400);
    await errorOf(await admin("GET", `${NS}/a%00b/objects`), 400);
    await errorOf(await admin("POST", `${NS}/Tessera::Test/resource_types`, { name: "x\u0000" }), 400);
  });

  it("creates a namespace whose name is not ASCII, its Location percent-encoded, and serves it by that name", async () => {
    const res = await admin("POST", NS, { namespace: "Ünï::名" });
    expect(res.status).toBe(201);
    expect(res.headers.get("location")).toMatch(/\/v2\/metadefs\/namespaces\/%C3%9Cn%C3%AF::%E5%90%8D$/);
    expect(
      (await expectJson(await admin("GET", `${NS}/${encodeURIComponent("Ünï::名")}`), 200)).namespace,
    ).toBe("Ünï::名");
  });

  it("answers HEAD on metadefs paths with 405, as Glance", async () => {
    for (const path of [
      NS,
      `${NS}/Tessera::Test`,
      `${NS}/Tessera::Test/objects`,
      "/v2/metadefs/resource_types",
    ]) {
      expect((await admin("HEAD", path)).status, path).toBe(405);
    }
  });

  it("PUT renames with the contents following, resets what the body leaves out, and answers with the updated_at it read", async () => {
    await create({ namespace: "Put::Me", display_name: "D", owner: "someone-else", visibility: "public" });
    const before = await expectJson(await admin("GET", `${NS}/Put::Me`), 200);
    await new Promise((r) => setTimeout(r, 1100));
    const put = await expectJson(await admin("PUT", `${NS}/Put::Me`, { namespace: "Put::Renamed" }), 200);
    expect(put).toMatchObject({
      namespace: "Put::Renamed",
      visibility: "private",
      owner: "ops",
      updated_at: before.updated_at,
    });
    expect(put.display_name).toBeUndefined();
    expect(await errorOf(await admin("GET", `${NS}/Put::Me`), 404)).toBe(
      "Metadata definition namespace=Put::Me was not found.",
    );
    const after = await expectJson(await admin("GET", `${NS}/Put::Renamed`), 200);
    expect(after.updated_at).not.toBe(before.updated_at);

    expect(await errorOf(await admin("PUT", `${NS}/Put::Renamed`, { namespace: "Tessera::Test" }), 409)).toBe(
      "Invalid update. It would result in a duplicate metadata definition namespace with the same name of Tessera::Test",
    );
    expect(await errorOf(await admin("PUT", `${NS}/No::Such`, { namespace: "No::Such" }), 404)).toBe(
      "Namespace No::Such not found",
    );
    // Renaming back keeps what it holds.
    await create({ namespace: "Keeps::Contents", tags: [{ name: "kept" }] });
    await expectJson(await admin("PUT", `${NS}/Keeps::Contents`, { namespace: "Keeps::Renamed" }), 200);
    expect((await expectJson(await admin("GET", `${NS}/Keeps::Renamed/tags`), 200)).tags).toEqual([
      { name: "kept" },
    ]);
  });

  it("lists with paging links that keep the query, filters by visibility and resource types, and sorts", async () => {
    for (const n of ["List::A", "List::B", "List::C"]) {
      await create({
        namespace: n,
        visibility: "public",
        resource_type_associations: [{ name: "OS::Nova::Flavor" }],
      });
    }
    const q = "resource_types=OS::Nova::Flavor&sort_key=namespace&sort_dir=asc&limit=2";
    const first = await expectJson(await admin("GET", `${NS}?${q}`), 200);
    expect((first.namespaces as { namespace: string }[]).map((n) => n.namespace)).toEqual([
      "List::A",
      "List::B",
    ]);
    expect(first.first).toBe(
      "/v2/metadefs/namespaces?resource_types=OS%3A%3ANova%3A%3AFlavor&sort_key=namespace&sort_dir=asc&limit=2",
    );
    expect(first.next).toBe(`${first.first}&marker=List%3A%3AB`);
    expect(first.schema).toBe("/v2/schemas/metadefs/namespaces");
    const second = await expectJson(await admin("GET", first.next as string), 200);
    expect((second.namespaces as { namespace: string }[]).map((n) => n.namespace)).toEqual(["List::C"]);
    expect(second.next).toBeUndefined();

    const listed = await expectJson(await admin("GET", `${NS}?visibility=private&limit=100`), 200);
    const names = (listed.namespaces as { namespace: string; properties?: unknown }[]).map(
      (n) => n.namespace,
    );
    expect(names).toContain("Tessera::Test");
    expect(names).not.toContain("List::A");
    expect((listed.namespaces as { properties?: unknown }[]).every((n) => n.properties === undefined)).toBe(
      true,
    );
  });

  it("refuses bad list queries with 400 and an unknown marker with 404", async () => {
    expect(await errorOf(await admin("GET", `${NS}?visibility=bogus`), 400)).toBe(
      "Invalid visibility value: bogus",
    );
    expect(await errorOf(await admin("GET", `${NS}?limit=-1`), 400)).toBe("limit param must be positive");
    await errorOf(await admin("GET", `${NS}?limit=abc`), 400);
    await errorOf(await admin("GET", `${NS}?sort_key=bogus`), 400);
    await errorOf(await admin("GET", `${NS}?sort_dir=sideways`), 400);
    expect(await errorOf(await admin("GET", `${NS}?marker=nonexistent`), 404)).toBe(
      "Metadata definition namespace=nonexistent was not found.",
    );
    const empty = await expectJson(await admin("GET", `${NS}?limit=0`), 200);
    expect(empty).toEqual({
      namespaces: [],
      schema: "/v2/schemas/metadefs/namespaces",
      first: "/v2/metadefs/namespaces?limit=0",
    });
  });

  it("associations: adding one creates its resource type, a duplicate is 409, a protected namespace keeps them", async () => {
    await create({ namespace: "Assoc::NS" });
    const path = `${NS}/Assoc::NS/resource_types`;
    const a = await expectJson(await admin("POST", path, { name: "Tessera::Thing", prefix: "x_" }), 201);
    expect(a).toMatchObject({ name: "Tessera::Thing", prefix: "x_" });
    const types = await expectJson(await admin("GET", "/v2/metadefs/resource_types"), 200);
    expect((types.resource_types as { name: string }[]).map((t) => t.name)).toContain("Tessera::Thing");
    expect(await errorOf(await admin("POST", path, { name: "Tessera::Thing" }), 409)).toBe(
      "The metadata definition resource-type association of resource-type=Tessera::Thing to namespace=Assoc::NS already exists.",
    );
    expect((await expectJson(await admin("GET", path), 200)).resource_type_associations).toMatchObject([
      { name: "Tessera::Thing" },
    ]);

    await expectJson(await admin("PUT", `${NS}/Assoc::NS`, { namespace: "Assoc::NS", protected: true }), 200);
    expect(await errorOf(await admin("DELETE", `${path}/Tessera::Thing`), 403)).toBe(
      "Metadata definition resource-type-association Tessera::Thing is protected and cannot be deleted.",
    );
    expect(await errorOf(await admin("DELETE", `${NS}/Assoc::NS`), 403)).toBe(
      "Metadata definition namespace Assoc::NS is protected and cannot be deleted.",
    );
    await expectJson(await admin("PUT", `${NS}/Assoc::NS`, { namespace: "Assoc::NS" }), 200);
    expect((await admin("DELETE", `${path}/Tessera::Thing`)).status).toBe(204);
    expect(await errorOf(await admin("DELETE", `${path}/Tessera::Thing`), 404)).toBe(
      "Failed to find resource type Tessera::Thing to delete",
    );
    // The type stays once its last association is gone, as in Glance.
    const still = await expectJson(await admin("GET", "/v2/metadefs/resource_types"), 200);
    expect((still.resource_types as { name: string }[]).map((t) => t.name)).toContain("Tessera::Thing");
    expect((await admin("DELETE", `${NS}/Assoc::NS`)).status).toBe(204);
    expect(await errorOf(await admin("DELETE", `${NS}/Assoc::NS`), 404)).toBe(
      "Namespace Assoc::NS not found",
    );
  });
});

describe("metadefs policy", () => {
  it("another project does not see a private namespace (404) but sees public ones; its own project reads its private one", async () => {
    await create({ namespace: "Alpha::Private", owner: "alpha" });
    await create({ namespace: "Everyone::Public", visibility: "public" });
    expect((await as("bob")("GET", `${NS}/Alpha::Private`)).status).toBe(404);
    expect((await as("bob")("GET", `${NS}/Alpha::Private/objects`)).status).toBe(404);
    const bobs = await expectJson(await as("bob")("GET", `${NS}?limit=1000`), 200);
    const seen = (bobs.namespaces as { namespace: string }[]).map((n) => n.namespace);
    expect(seen).toContain("Everyone::Public");
    expect(seen).not.toContain("Alpha::Private");
    expect(seen).not.toContain("Tessera::Test");
    await expectJson(await as("alice")("GET", `${NS}/Alpha::Private`), 200);
    await expectJson(await as("alice")("GET", "/v2/metadefs/resource_types"), 200);
  });

  it("only admins write: a member gets 403 with Glance's rule name, even on its own project's namespace", async () => {
    const alice = as("alice");
    expect(await errorOf(await alice("POST", NS, { namespace: "By::Member" }), 403)).toBe(
      "You are not authorized to complete add_metadef_namespace action.",
    );
    expect(
      await errorOf(await alice("PUT", `${NS}/Alpha::Private`, { namespace: "Alpha::Private" }), 403),
    ).toBe("You are not authorized to complete modify_metadef_namespace action.");
    expect(await errorOf(await alice("DELETE", `${NS}/Alpha::Private`), 403)).toBe(
      "You are not authorized to complete delete_metadef_namespace action.",
    );
    expect(await errorOf(await alice("POST", `${NS}/Alpha::Private/objects`, { name: "o" }), 403)).toBe(
      "You are not authorized to complete add_metadef_object action.",
    );
    await errorOf(await alice("POST", `${NS}/Alpha::Private/tags/t`), 403);
    await errorOf(
      await alice("POST", `${NS}/Alpha::Private/resource_types`, { name: "OS::Glance::Image" }),
      403,
    );
    expect((await admin("GET", `${NS}/By::Member`)).status).toBe(404);
  });

  it("a caller without the reader role reads nothing (403)", async () => {
    await errorOf(await as("guest")("GET", `${NS}/Everyone::Public`), 403);
    await errorOf(await as("guest")("GET", NS), 403);
  });
});
