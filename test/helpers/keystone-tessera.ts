/**
 * Tessera in Keystone mode, named in Keystone's catalog as the image service (region
 * RegionOne), with Glance's metadefs files loaded: what the clients that find the image service
 * through the catalog (tempest, Horizon) need, as a cloud gives it to them.
 */
import { expect } from "vitest";
import type { ServerOptions } from "../../src/api/server.js";
import { BIN } from "./child-server.js";
import { GLANCE_METADEFS } from "./glance-metadefs.js";
import { type Keystone, serviceAuth } from "./keystone.js";
import { runAsync } from "./run.js";
import { startTestServer, type TestServer } from "./server.js";

export async function startCatalogedTessera(
  ks: Keystone,
  overrides: Partial<ServerOptions> = {},
): Promise<TestServer> {
  const tessera = await startTestServer({ auth: serviceAuth(ks), ...overrides });
  const svc = await ks.admin("POST", "/services", { service: { type: "image", name: "glance" } });
  const serviceId = ((await svc.json()) as { service: { id: string } }).service.id;
  const ep = await ks.admin("POST", "/endpoints", {
    endpoint: { service_id: serviceId, interface: "public", url: tessera.url, region_id: "RegionOne" },
  });
  expect(ep.status).toBe(201);
  const load = await runAsync(process.execPath, [
    BIN,
    "metadefs",
    "load",
    GLANCE_METADEFS,
    "--data",
    tessera.dataDir,
  ]);
  expect(load.status, load.err).toBe(0);
  return tessera;
}
