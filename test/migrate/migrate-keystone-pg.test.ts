/**
 * `tessera migrate-from-glance` as a cloud runs it: the real Glance behind real Keystone (its
 * authtoken validating every token), found through Keystone's catalog from the OS_* variables
 * an operator's openrc sets, into a Tessera whose catalog is on PostgreSQL.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BIN } from "../helpers/child-server.js";
import { prng } from "../helpers/data.js";
import { type GlancePeer, haveGlanceApi, startGlancePeer } from "../helpers/glance-peer.js";
import { KEYSTONE_MISSING, type Keystone, PEOPLE, startKeystone } from "../helpers/keystone.js";
import { type Postgres, requirePostgres, startPostgres } from "../helpers/postgres.js";
import { cleanUp, runAsync } from "../helpers/run.js";
import { startTestServer } from "../helpers/server.js";

if (KEYSTONE_MISSING && process.env.CI) throw new Error("CI must have Keystone (.ci/run installs it)");

describe.skipIf(
  !haveGlanceApi() || KEYSTONE_MISSING || !requirePostgres("migrating into a PostgreSQL catalog"),
)("migrate-from-glance through Keystone into a PostgreSQL catalog", () => {
  let ks: Keystone;
  let glance: GlancePeer;
  let pg: Postgres;
  let work: string;
  let config: string;
  let pgUrl: string;
  const images = new Map<string, Buffer>();

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "tessera-migrate-ks-"));
    ks = await startKeystone();
    glance = await startGlancePeer({
      url: ks.url,
      user: PEOPLE.svc.user,
      password: PEOPLE.svc.password,
      project: PEOPLE.svc.project,
    });
    const service = await ks.admin("POST", "/services", { service: { type: "image", name: "glance" } });
    const serviceId = ((await service.json()) as { service: { id: string } }).service.id;
    const endpoint = await ks.admin("POST", "/endpoints", {
      endpoint: { service_id: serviceId, interface: "public", url: glance.url, region_id: "RegionOne" },
    });
    expect(endpoint.status).toBe(201);
    pg = await startPostgres();
    config = join(work, "tessera.json");
    pgUrl = await pg.createDatabase();
    await writeFile(config, JSON.stringify({ catalog: { type: "postgres", url: pgUrl } }));

    // Two tenants' images, sharing a base, one shared with the other tenant.
    const demo = (await ks.token(PEOPLE.demo)).token;
    const beta = await ks.token(PEOPLE.beta);
    const base = Buffer.from(prng(11, 3 * 1024 * 1024));
    for (const [i, visibility] of ["private", "shared", "community"].entries()) {
      const res = await glance.request("POST", "/v2/images", {
        token: demo,
        json: {
          name: `demo-${i}`,
          visibility,
          disk_format: "raw",
          container_format: "bare",
          os_distro: "debian",
        },
      });
      expect(res.status).toBe(201);
      const id = ((await res.json()) as { id: string }).id;
      const data = Buffer.concat([base, Buffer.from(`tenant copy ${i}`)]);
      expect((await glance.request("PUT", `/v2/images/${id}/file`, { token: demo, body: data })).status).toBe(
        204,
      );
      images.set(id, data);
      if (visibility === "shared") {
        const add = await glance.request("POST", `/v2/images/${id}/members`, {
          token: demo,
          json: { member: beta.projectId },
        });
        expect(add.status).toBe(200);
      }
    }
  }, 300_000);

  afterAll(() =>
    cleanUp(
      () => glance?.stop(),
      () => ks?.stop(),
      () => pg?.destroy(),
      () => rm(work, { recursive: true, force: true }),
    ),
  );

  const migrate = () =>
    runAsync(
      process.execPath,
      // One image at a time: two copies of the same new chunks at once would both write them.
      [BIN, "migrate-from-glance", "--config", config, "--data", join(work, "data"), "--parallel", "1"],
      {
        env: {
          ...process.env,
          OS_AUTH_URL: ks.url.replace(/\/v3$/, ""),
          OS_USERNAME: PEOPLE.admin.user,
          OS_PASSWORD: PEOPLE.admin.password,
          OS_PROJECT_NAME: PEOPLE.admin.project,
          OS_USER_DOMAIN_ID: "default",
          OS_PROJECT_DOMAIN_ID: "default",
        },
      },
    );

  test("an admin's openrc finds Glance in Keystone's catalog, and every image, member and byte lands in the PostgreSQL catalog, once", async () => {
    const first = await migrate();
    expect(first.status, first.err).toBe(0);
    const report = JSON.parse(first.out) as {
      images: Record<string, number>;
      bytesStored: number;
      bytesRead: number;
    };
    expect(report.images).toMatchObject({ listed: 3, copied: 3, failed: 0 });
    // The three tenants' copies share their base: it is stored once.
    expect(report.bytesStored).toBeLessThan(report.bytesRead / 2);

    const again = await migrate();
    expect(again.status, again.err).toBe(0);
    expect(JSON.parse(again.out).images).toMatchObject({ listed: 3, copied: 0, updated: 0, unchanged: 3 });

    const admin = (await ks.token(PEOPLE.admin)).token;
    const tessera = await startTestServer({ catalog: { type: "postgres", url: pgUrl } }, join(work, "data"));
    try {
      for (const [id, data] of images) {
        const want = (await (
          await glance.request("GET", `/v2/images/${id}`, { token: admin })
        ).json()) as Record<string, unknown>;
        const got = (await (await fetch(`${tessera.url}/v2/images/${id}`)).json()) as Record<string, unknown>;
        for (const k of [
          "owner",
          "visibility",
          "created_at",
          "updated_at",
          "checksum",
          "os_hash_value",
          "os_distro",
        ]) {
          expect([id, k, got[k]]).toEqual([id, k, want[k]]);
        }
        const bytes = Buffer.from(await (await fetch(`${tessera.url}/v2/images/${id}/file`)).arrayBuffer());
        expect(createHash("md5").update(bytes).digest("hex")).toBe(
          createHash("md5").update(data).digest("hex"),
        );
        if (want.visibility === "shared") {
          const members = (await (await fetch(`${tessera.url}/v2/images/${id}/members`)).json()) as {
            members: { member_id: string; status: string }[];
          };
          expect(members.members.map((m) => [m.member_id, m.status])).toEqual([
            [(await ks.token(PEOPLE.beta)).projectId, "pending"],
          ]);
        }
      }
    } finally {
      await tessera.close();
    }
  }, 300_000);
});
