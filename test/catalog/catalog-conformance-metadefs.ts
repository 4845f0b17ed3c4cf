/**
 * The catalog contract, part five (run by runCatalogConformance): the metadata definitions,
 * namespaces kept whole and resource types.
 */
import { describe, expect, it } from "vitest";
import { type CatalogFactory, freshCatalog, namespace } from "./catalog-fixtures.js";

export function runCatalogMetadefsConformance(name: string, make: CatalogFactory): void {
  describe(`catalog conformance: ${name}: metadata definitions`, () => {
    const catalog = freshCatalog(make);

    it("putNamespace stores a namespace that getNamespace returns as written, its property maps in the order written", async () => {
      const cat = catalog();
      const ns = namespace("OS::Test::One");
      await cat.transact((tx) => tx.putNamespace(ns));
      const got = await cat.records.getNamespace("OS::Test::One");
      expect(got).toEqual(ns);
      expect(Object.keys(got?.properties ?? {})).toEqual(["zeta_long_name", "a", "mid"]);
      expect(Object.keys(got?.objects[0]?.properties ?? {})).toEqual(["y", "x"]);
      expect(await cat.records.getNamespace("os::test::one")).toBeUndefined();
    });

    it("putNamespace replaces the namespace of its name, and removeNamespace removes only the one named", async () => {
      const cat = catalog();
      await cat.transact(async (tx) => {
        await tx.putNamespace(namespace("A"));
        await tx.putNamespace(namespace("B"));
      });
      const changed = namespace("A", {
        description: "changed",
        tags: [],
        updated_at: "2024-05-01T00:00:00.000Z",
      });
      await cat.transact((tx) => tx.putNamespace(changed));
      expect(await cat.records.getNamespace("A")).toEqual(changed);
      await cat.transact((tx) => tx.removeNamespace("B"));
      expect((await cat.records.listNamespaces()).map((n) => n.namespace)).toEqual(["A"]);
    });

    it("listNamespaces and listResourceTypes list by name in byte order", async () => {
      const cat = catalog();
      const names = ["b", "OS::Nova::Flavor", "B", "a::x", "OS::Glance::Image", "Z"];
      const at = "2024-04-01T00:00:00.000Z";
      await cat.transact(async (tx) => {
        for (const n of names) {
          await tx.putNamespace(namespace(n));
          await tx.putResourceType({ name: n, protected: n.startsWith("OS"), created_at: at });
        }
      });
      const sorted = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      expect((await cat.records.listNamespaces()).map((n) => n.namespace)).toEqual(sorted);
      const types = await cat.records.listResourceTypes();
      expect(types.map((t) => t.name)).toEqual(sorted);
      expect(types.find((t) => t.name === "Z")).toEqual({ name: "Z", protected: false, created_at: at });
      await cat.transact((tx) => tx.removeResourceType("Z"));
      expect((await cat.records.listResourceTypes()).map((t) => t.name)).not.toContain("Z");
    });

    it("a unit of work that throws leaves namespaces and resource types as they were", async () => {
      const cat = catalog();
      await cat.transact((tx) => tx.putNamespace(namespace("Kept")));
      await expect(
        cat.transact(async (tx) => {
          await tx.removeNamespace("Kept");
          await tx.putNamespace(namespace("Renamed"));
          await tx.putResourceType({ name: "T", protected: false, created_at: "2024-04-01T00:00:00.000Z" });
          // Read its own writes before it fails.
          expect(await tx.getNamespace("Renamed")).toBeDefined();
          throw new Error("abandoned");
        }),
      ).rejects.toThrow("abandoned");
      expect((await cat.records.listNamespaces()).map((n) => n.namespace)).toEqual(["Kept"]);
      expect(await cat.records.listResourceTypes()).toEqual([]);
    });
  });
}
