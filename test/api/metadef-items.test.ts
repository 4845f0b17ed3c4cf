/**
 * What a metadefs namespace holds, over real HTTP: objects, properties and tags created, shown,
 * replaced, renamed and deleted one at a time and all at once, with Glance Zed's statuses and
 * messages; a protected namespace refuses deletes but not additions.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { errorOf, expectJson, metadefServer } from "../helpers/metadef-tenants.js";

const { as, server } = metadefServer();
const admin = as("admin");
const NS = "/v2/metadefs/namespaces/Items::NS";

beforeAll(async () => {
  const res = await admin("POST", "/v2/metadefs/namespaces", {
    namespace: "Items::NS",
    properties: { p1: { type: "string", title: "P1" } },
    resource_type_associations: [{ name: "OS::Glance::Image", prefix: "tt_" }],
  });
  await expectJson(res, 201);
});

describe("metadefs objects", () => {
  it("creates, lists by name, shows, renames with PUT and deletes an object", async () => {
    const o2 = await expectJson(
      await admin("POST", `${NS}/objects`, {
        name: "o2",
        description: "object two",
        required: ["y"],
        properties: { y: { type: "string", title: "Y" }, a: { type: "integer", title: "A", minimum: 0 } },
      }),
      201,
    );
    expect(o2).toMatchObject({
      name: "o2",
      required: ["y"],
      self: `${NS}/objects/o2`,
      schema: "/v2/schemas/metadefs/object",
    });
    await expectJson(await admin("POST", `${NS}/objects`, { name: "a0" }), 201);
    const list = await expectJson(await admin("GET", `${NS}/objects`), 200);
    expect(list.schema).toBe("v2/schemas/metadefs/objects");
    expect((list.objects as { name: string }[]).map((o) => o.name)).toEqual(["a0", "o2"]);
    expect((list.objects as Record<string, unknown>[])[0]).toMatchObject({ required: [], properties: {} });
    // An object's properties keep the order they were defined in.
    const shown = await expectJson(await admin("GET", `${NS}/objects/o2`), 200);
    expect(Object.keys(shown.properties as object)).toEqual(["y", "a"]);

    expect(await errorOf(await admin("POST", `${NS}/objects`, { name: "o2" }), 409)).toBe(
      "A metadata definition object with name=o2 already exists in namespace=Items::NS.",
    );
    const renamed = await expectJson(
      await admin("PUT", `${NS}/objects/o2`, { name: "o2b", description: "renamed" }),
      200,
    );
    expect(renamed).toMatchObject({
      name: "o2b",
      description: "renamed",
      properties: {},
      created_at: o2.created_at,
    });
    expect(await errorOf(await admin("GET", `${NS}/objects/o2`), 404)).toBe(
      "Could not find metadata object o2",
    );
    expect(await errorOf(await admin("PUT", `${NS}/objects/o2b`, { name: "a0" }), 409)).toBe(
      "Invalid update. It would result in a duplicate metadata definition object with the same name=a0 in namespace=Items::NS.",
    );
    await errorOf(await admin("PUT", `${NS}/objects/o2b`, { description: "no name" }), 400);
    expect((await admin("DELETE", `${NS}/objects/a0`)).status).toBe(204);
    expect(await errorOf(await admin("DELETE", `${NS}/objects/a0`), 404)).toBe(
      "Could not find metadata object a0",
    );
    expect(
      await errorOf(await admin("POST", "/v2/metadefs/namespaces/No::Such/objects", { name: "x" }), 404),
    ).toBe("Metadata definition namespace=No::Such was not found.");
  });
});

describe("metadefs properties", () => {
  it("creates, lists, shows (prefixed with ?resource_type=), renames and deletes a property", async () => {
    const p2 = await expectJson(
      await admin("POST", `${NS}/properties`, { name: "p2", type: "string", title: "P2", enum: ["a", "b"] }),
      201,
    );
    expect(p2).toEqual({ name: "p2", type: "string", title: "P2", enum: ["a", "b"] });
    expect(
      await errorOf(await admin("POST", `${NS}/properties`, { name: "p2", type: "string", title: "x" }), 409),
    ).toBe("A metadata definition property with name=p2 already exists in namespace=Items::NS.");
    await errorOf(await admin("POST", `${NS}/properties`, { name: "p3", type: "string" }), 400);
    await errorOf(await admin("POST", `${NS}/properties`, { name: "p3", title: "T", type: "bogus" }), 400);

    const list = await expectJson(await admin("GET", `${NS}/properties`), 200);
    expect(Object.keys(list.properties as object)).toEqual(["p1", "p2"]);
    expect(await expectJson(await admin("GET", `${NS}/properties/p1`), 200)).toEqual({
      name: "p1",
      type: "string",
      title: "P1",
    });
    const prefixed = await admin("GET", `${NS}/properties/tt_p1?resource_type=OS::Glance::Image`);
    expect((await expectJson(prefixed, 200)).name).toBe("p1");
    expect(
      await errorOf(await admin("GET", `${NS}/properties/p1?resource_type=OS::Glance::Image`), 404),
    ).toBe("Property p1 does not start with the expected resource type association prefix of 'tt_'.");
    expect(await errorOf(await admin("GET", `${NS}/properties/x?resource_type=No::Such::Type`), 404)).toBe(
      "The metadata definition resource-type with name=No::Such::Type, was not found.",
    );

    const renamed = await expectJson(
      await admin("PUT", `${NS}/properties/p2`, { name: "p2b", type: "string", title: "P2B" }),
      200,
    );
    expect(renamed).toEqual({ name: "p2b", type: "string", title: "P2B" });
    expect(await errorOf(await admin("GET", `${NS}/properties/p2`), 404)).toBe("Could not find property p2");
    expect(
      await errorOf(
        await admin("PUT", `${NS}/properties/p2b`, { name: "p1", type: "string", title: "x" }),
        409,
      ),
    ).toBe(
      "Invalid update. It would result in a duplicate metadata definition property with the same name=p1 in namespace=Items::NS.",
    );
    expect((await admin("DELETE", `${NS}/properties/p2b`)).status).toBe(204);
    expect(await errorOf(await admin("DELETE", `${NS}/properties/p2b`), 404)).toBe(
      "Could not find property p2b",
    );
  });
});

describe("metadefs property names", () => {
  it("keeps a property named __proto__ through POST, PUT and PUT of another onto its name", async () => {
    await expectJson(
      await admin("POST", `${NS}/properties`, { name: "__proto__", type: "string", title: "T" }),
      201,
    );
    await expectJson(
      await admin("PUT", `${NS}/properties/__proto__`, { name: "__proto__", type: "string", title: "T2" }),
      200,
    );
    const list = await expectJson(await admin("GET", `${NS}/properties`), 200);
    expect(Object.hasOwn(list.properties as object, "__proto__")).toBe(true);
    await expectJson(
      await admin("POST", `${NS}/properties`, { name: "pp", type: "string", title: "P" }),
      201,
    );
    await expectJson(
      await admin("PUT", `${NS}/properties/pp`, { name: "qq", type: "string", title: "Q" }),
      200,
    );
    const after = Object.keys(
      (await expectJson(await admin("GET", `${NS}/properties`), 200)).properties as object,
    );
    expect(after).toEqual(expect.arrayContaining(["__proto__", "qq"]));
    for (const n of ["__proto__", "qq"])
      expect((await admin("DELETE", `${NS}/properties/${n}`)).status).toBe(204);
  });
});

describe("metadefs tags", () => {
  const names = async () =>
    ((await expectJson(await admin("GET", `${NS}/tags`), 200)).tags as { name: string }[]).map((t) => t.name);

  it("creates one, replaces all, appends with X-Openstack-Append, and refuses any duplicate without changing anything", async () => {
    const t = await expectJson(await admin("POST", `${NS}/tags/t2`), 201);
    expect(t).toEqual({ name: "t2", created_at: expect.any(String), updated_at: expect.any(String) });
    expect(await errorOf(await admin("POST", `${NS}/tags/t2`), 409)).toMatch(
      /^A metadata tag with name=t2 already exists/,
    );
    expect(
      await expectJson(await admin("POST", `${NS}/tags`, { tags: [{ name: "a" }, { name: "b" }] }), 201),
    ).toEqual({
      tags: [{ name: "a" }, { name: "b" }],
    });
    expect(await names()).toEqual(["b", "a"]);
    const appended = await fetch(`${server().url}${NS}/tags`, {
      method: "POST",
      headers: {
        "X-Auth-Token": "admin-token",
        "Content-Type": "application/json",
        "X-Openstack-Append": "True",
      },
      body: JSON.stringify({ tags: [{ name: "c" }, { name: "d" }] }),
    });
    await expectJson(appended, 201);
    expect(await names()).toEqual(["d", "c", "b", "a"]);
    await errorOf(await admin("POST", `${NS}/tags`, { tags: [{ name: "x" }, { name: "x" }] }), 409);
    expect(await names()).toEqual(["d", "c", "b", "a"]);
    await errorOf(await admin("POST", `${NS}/tags`, { tags: [{ name: "x", extra: 1 }] }), 400);
    await errorOf(await admin("POST", `${NS}/tags`, {}), 400);
    const page = await expectJson(await admin("GET", `${NS}/tags?sort_key=name&sort_dir=asc&limit=2`), 200);
    expect(page.tags).toEqual([{ name: "a" }, { name: "b" }]);
  });

  it("an empty list replaces no tags, and an unknown marker is 404", async () => {
    const before = await names();
    expect(await expectJson(await admin("POST", `${NS}/tags`, { tags: [] }), 201)).toEqual({ tags: [] });
    expect(await names()).toEqual(before);
    expect(await errorOf(await admin("GET", `${NS}/tags?marker=nope`), 404)).toBe(
      "Could not find metadata tag nope",
    );
  });

  it("shows, renames and deletes a tag; names are case-sensitive", async () => {
    expect(await expectJson(await admin("GET", `${NS}/tags/a`), 200)).toMatchObject({ name: "a" });
    expect(await errorOf(await admin("GET", `${NS}/tags/A`), 404)).toBe("Could not find metadata tag A");
    expect(await expectJson(await admin("PUT", `${NS}/tags/a`, { name: "a2" }), 200)).toMatchObject({
      name: "a2",
    });
    await errorOf(await admin("PUT", `${NS}/tags/a2`, { name: "b" }), 409);
    await errorOf(await admin("PUT", `${NS}/tags/a2`, {}), 400);
    expect((await admin("DELETE", `${NS}/tags/a2`)).status).toBe(204);
    expect(await errorOf(await admin("GET", `${NS}/tags/a2`), 404)).toBe("Could not find metadata tag a2");
  });
});

describe("a namespace's contents all at once, and protection", () => {
  it("a protected namespace refuses every delete but takes additions; unprotected, DELETE /objects, /properties and /tags empty it", async () => {
    await expectJson(await admin("POST", `${NS}/objects`, { name: "po" }), 201);
    await expectJson(await admin("PUT", NS, { namespace: "Items::NS", protected: true }), 200);
    expect(await errorOf(await admin("DELETE", `${NS}/objects/po`), 403)).toBe(
      "Metadata definition object po is protected and cannot be deleted.",
    );
    expect(await errorOf(await admin("DELETE", `${NS}/properties/p1`), 403)).toBe(
      "Metadata definition property p1 is protected and cannot be deleted.",
    );
    expect(await errorOf(await admin("DELETE", `${NS}/tags/b`), 403)).toBe(
      "Metadata definition tag b is protected and cannot be deleted.",
    );
    for (const what of ["objects", "properties", "tags"]) {
      expect(await errorOf(await admin("DELETE", `${NS}/${what}`), 403)).toBe(
        "Metadata definition namespace Items::NS is protected and cannot be deleted.",
      );
    }
    await expectJson(await admin("POST", `${NS}/objects`, { name: "po2" }), 201);

    await expectJson(await admin("PUT", NS, { namespace: "Items::NS" }), 200);
    for (const what of ["objects", "properties", "tags"])
      expect((await admin("DELETE", `${NS}/${what}`)).status).toBe(204);
    expect(await expectJson(await admin("GET", `${NS}/objects`), 200)).toEqual({
      objects: [],
      schema: "v2/schemas/metadefs/objects",
    });
    expect(await expectJson(await admin("GET", `${NS}/properties`), 200)).toEqual({ properties: {} });
    expect(await expectJson(await admin("GET", `${NS}/tags`), 200)).toEqual({ tags: [] });
    // The associations are not contents: they stay.
    const ns = await expectJson(await admin("GET", NS), 200);
    expect(ns.resource_type_associations).toMatchObject([{ name: "OS::Glance::Image" }]);
  });
});
