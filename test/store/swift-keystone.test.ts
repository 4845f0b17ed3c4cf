/**
 * The Swift backend with Keystone v3, as Glance's swift store runs in a cloud: a real Swift whose
 * proxy validates Keystone tokens (authtoken + keystoneauth), a real Keystone with Swift in its
 * catalog; the backend logs in as a service user and finds its storage URL in the catalog.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { SwiftBackend } from "../../src/store/swift-backend.js";
import { prng } from "../helpers/data.js";
import { KEYSTONE_MISSING, type Keystone, PEOPLE, startKeystone } from "../helpers/keystone.js";
import { SWIFT_MISSING, type Swift, startSwift } from "../helpers/swift.js";
import { runBackendConformance } from "./backend-conformance.js";

describe.skipIf(SWIFT_MISSING || KEYSTONE_MISSING)("Swift with Keystone v3", () => {
  let swift: Swift;
  let ks: Keystone;
  beforeAll(async () => {
    [swift, ks] = await Promise.all([startSwift(), startKeystone()]);
    await swift.useKeystone(ks.url, {
      username: PEOPLE.svc.user,
      password: PEOPLE.svc.password,
      project: PEOPLE.svc.project,
    });
    // Swift in Keystone's catalog, one account per project.
    const svc = await ks.admin("POST", "/services", { service: { type: "object-store", name: "swift" } });
    const serviceId = ((await svc.json()) as { service: { id: string } }).service.id;
    const ep = await ks.admin("POST", "/endpoints", {
      endpoint: {
        service_id: serviceId,
        interface: "public",
        url: `${swift.apiUrl}/AUTH_%(project_id)s`,
        region_id: "RegionOne",
      },
    });
    expect(ep.status).toBe(201);
  }, 180_000);
  afterAll(async () => {
    await swift?.stop();
    await ks?.stop();
  });

  let n = 0;
  const keystoneBackend = () =>
    new SwiftBackend({
      authUrl: ks.url,
      authVersion: 3,
      username: PEOPLE.svc.user,
      password: PEOPLE.svc.password,
      projectName: PEOPLE.svc.project,
      container: "tessera",
      prefix: `k${n++}/`,
    });

  runBackendConformance("Swift, native API, Keystone v3 and the catalog's storage URL", async () => ({
    backend: keystoneBackend(),
    dispose: async () => {},
  }));

  test("the storage URL is the service project's account from the catalog", async () => {
    const b = keystoneBackend();
    await b.put("packs/k/one", [prng(1, 100)]);
    const projectId = await ks.projectId(PEOPLE.svc.project);
    expect((b as unknown as { auth: { storageUrl: string } }).auth.storageUrl).toBe(
      `${swift.apiUrl}/AUTH_${projectId}`,
    );
    await b.close();
  });

  test("wrong credentials are refused, naming the user, not retried as a transient failure", async () => {
    const b = new SwiftBackend({
      authUrl: ks.url,
      authVersion: 3,
      username: PEOPLE.svc.user,
      password: "wrong",
      projectName: PEOPLE.svc.project,
      container: "tessera",
    });
    await expect(b.stat("packs/x")).rejects.toThrow(/refused svc: 401/);
  });
});
