/**
 * `tessera migrate-from-glance` against the real Glance (Zed), started by the test, holding 33
 * images of every kind (helpers/glance-fleet.ts), into a Tessera whose quotas every tenant is
 * over (they apply to new images, not to migrated ones). The shipped CLI (dist/) runs as a child
 * process, as an operator runs it; the first run is killed partway. Tessera then serves the
 * result, compared field by field and byte by byte with what Glance shows.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BIN } from "../helpers/child-server.js";
import { type Fleet, glanceDataFile, makeFleet } from "../helpers/glance-fleet.js";
import { type GlancePeer, haveGlanceApi, startGlancePeer } from "../helpers/glance-peer.js";
import { cleanUp, runAsync } from "../helpers/run.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { toolsPresent } from "../helpers/tools.js";

interface Report {
  images: Record<"listed" | "copied" | "created" | "updated" | "unchanged" | "skipped" | "failed", number>;
  bytesRead: number;
  bytesCopied: number;
  bytesStored: number;
  dedupRatio: number | null;
  notInGlance: string[];
  failures: { id: string; why: string; mismatch: boolean }[];
}

/** Keys Glance and Tessera may differ in: Tessera measures virtual sizes and names its stores. */
const NOT_COMPARED = new Set(["virtual_size", "stores"]);

describe.skipIf(!haveGlanceApi() || !toolsPresent(["qemu-img"], "qcow2 images in Glance"))(
  "migrate-from-glance from a real Glance",
  () => {
    let glance: GlancePeer;
    let fleet: Fleet;
    let scratch: string;
    let data: string;
    let corrupted: string;
    let original: Buffer;

    const migrateArgs = (extra: string[] = []) => [
      BIN,
      "migrate-from-glance",
      "--glance",
      glance.url,
      "--header",
      "X-Roles: admin",
      "--header",
      "X-Project-Id: admin",
      "--data",
      data,
      "--config",
      join(scratch, "tessera.json"),
      "--no-fsync",
      ...extra,
    ];
    const migrate = (extra: string[] = []) => runAsync(process.execPath, migrateArgs(extra));
    const reportOf = (out: string) => JSON.parse(out.trim().split("\n").pop() as string) as Report;

    /** Runs Tessera over the migrated directory while `fn` looks at it. */
    async function withTessera(fn: (t: TestServer) => Promise<void>) {
      const t = await startTestServer({}, data);
      try {
        await fn(t);
      } finally {
        await t.close();
      }
    }

    beforeAll(async () => {
      scratch = await mkdtemp(join(tmpdir(), "tessera-migrate-"));
      data = join(scratch, "tessera");
      // Quotas every tenant of the fleet is over: they hold new images, not migrated ones.
      const quotas = { default: { image_count_total: 2, image_size_total: 1, image_count_uploading: 1 } };
      await writeFile(join(scratch, "tessera.json"), JSON.stringify({ quotas }));
      glance = await startGlancePeer();
      fleet = await makeFleet(glance, scratch);
      // One image whose bytes rot in Glance's store after Glance recorded its digests.
      corrupted = fleet.withData[3] as string;
      const file = glanceDataFile(glance, corrupted);
      original = await readFile(file);
      const rotten = Buffer.from(original);
      rotten[1000] = (rotten[1000] as number) ^ 0xff;
      await writeFile(file, rotten);
    }, 300_000);

    afterAll(() =>
      cleanUp(
        () => glance?.stop(),
        () => rm(scratch, { recursive: true, force: true }),
      ),
    );

    test("a migration killed partway finishes on the next run, and data that does not match Glance's digests is listed and never activated", async () => {
      expect(fleet.visible.length).toBeGreaterThanOrEqual(30);
      await killAfterCopies(spawn(process.execPath, migrateArgs(["--parallel", "1"])), 5);
      const run = await migrate(["--report", join(scratch, "report.json")]);
      expect(run.status, run.err).toBe(1);
      const report = reportOf(run.out);
      expect(JSON.parse(await readFile(join(scratch, "report.json"), "utf8"))).toEqual(report);
      expect(report.images.listed).toBe(fleet.visible.length);
      expect(report.images.copied).toBeGreaterThan(0);
      expect(report.failures).toEqual([
        { id: corrupted, name: expect.any(String), why: expect.any(String), mismatch: true },
      ]);
      // Refused before its commit, and not left behind: Tessera has no image of that id.
      await withTessera(async (t) => {
        expect((await fetch(`${t.url}/v2/images/${corrupted}`)).status).toBe(404);
      });
    }, 300_000);

    test("every other image is in Tessera with every field, member and byte as Glance shows them; deleted ones are not", async () => {
      await withTessera(async (t) => {
        for (const id of fleet.visible) {
          if (id === corrupted) continue;
          const want = await json(await glance.request("GET", `/v2/images/${id}`));
          const got = await json(await fetch(`${t.url}/v2/images/${id}`));
          for (const [k, v] of Object.entries(want)) {
            if (NOT_COMPARED.has(k)) continue;
            expect([id, k, k === "tags" ? [...(got[k] as string[])].sort() : got[k]]).toEqual([
              id,
              k,
              k === "tags" ? [...(v as string[])].sort() : v,
            ]);
          }
          const extra = Object.keys(got).filter((k) => !(k in want) && !NOT_COMPARED.has(k));
          expect([id, extra]).toEqual([id, []]);
          if (want.visibility === "shared") {
            const members = async (r: Response) =>
              ((await json(r)).members as Record<string, unknown>[]).sort((a, b) =>
                String(a.member_id).localeCompare(String(b.member_id)),
              );
            const wantMembers = await members(await glance.request("GET", `/v2/images/${id}/members`));
            if (fleet.shared.includes(id)) expect(wantMembers.length).toBeGreaterThan(0);
            expect(await members(await fetch(`${t.url}/v2/images/${id}/members`))).toEqual(wantMembers);
          }
          if (typeof want.size === "number") {
            const bytes = Buffer.from(await (await fetch(`${t.url}/v2/images/${id}/file`)).arrayBuffer());
            expect([id, createHash("md5").update(bytes).digest("hex")]).toEqual([id, want.checksum]);
            expect([id, createHash("sha512").update(bytes).digest("hex")]).toEqual([id, want.os_hash_value]);
          }
        }
        for (const id of [...fleet.deleted, ...fleet.killed]) {
          expect((await fetch(`${t.url}/v2/images/${id}`)).status).toBe(404);
        }
        const statuses = new Set<string>();
        for (const id of fleet.visible.filter((i) => i !== corrupted))
          statuses.add(String((await json(await fetch(`${t.url}/v2/images/${id}`))).status));
        expect([...statuses].sort()).toEqual(["active", "deactivated", "queued"]);
      });
    }, 300_000);

    test("a second run copies nothing and changes nothing but retries the mismatched image", async () => {
      const run = await migrate();
      const report = reportOf(run.out);
      expect(report.images.copied).toBe(0);
      expect(report.images.updated).toBe(0);
      expect(report.images.unchanged).toBe(fleet.visible.length - 1);
      expect(report.failures.map((f) => [f.id, f.mismatch])).toEqual([[corrupted, true]]);
      expect([report.bytesStored, report.dedupRatio, report.notInGlance]).toEqual([0, null, []]);
    }, 300_000);

    test("once Glance's bytes are whole again, the next run copies that image alone, deduplicated against the rest", async () => {
      await writeFile(glanceDataFile(glance, corrupted), original);
      const run = await migrate();
      expect(run.status, run.err).toBe(0);
      const report = reportOf(run.out);
      expect(report.images).toMatchObject({ copied: 1, updated: 0, failed: 0 });
      expect(report.bytesRead).toBe(original.length);
      // The fleet's images share a base: most of this one's chunks were already stored.
      expect(report.bytesStored).toBeLessThan(original.length / 2);
      await withTessera(async (t) => {
        const rec = await json(await fetch(`${t.url}/v2/images/${corrupted}`));
        const want = await json(await glance.request("GET", `/v2/images/${corrupted}`));
        expect([rec.status, rec.checksum, rec.os_hash_value]).toEqual([
          want.status,
          want.checksum,
          want.os_hash_value,
        ]);
      });
    }, 300_000);

    test("a killed image, which Glance lists to no one, is migrated when named, and Tessera too shows it by id only", async () => {
      const killed = fleet.killed[0] as string;
      const run = await migrate(["--image", killed]);
      expect(run.status, run.err).toBe(0);
      expect(reportOf(run.out).images).toMatchObject({ listed: 1, created: 1, failed: 0 });
      await withTessera(async (t) => {
        const want = await json(await glance.request("GET", `/v2/images/${killed}`));
        const got = await json(await fetch(`${t.url}/v2/images/${killed}`));
        expect([got.status, got.owner, got.created_at, got.updated_at]).toEqual([
          "killed",
          want.owner,
          want.created_at,
          want.updated_at,
        ]);
        const listed = (await json(await fetch(`${t.url}/v2/images?visibility=all&limit=1000`))).images as {
          id: string;
        }[];
        expect(listed.map((i) => i.id)).not.toContain(killed);
        expect(listed.length).toBeGreaterThan(20);
      });
    }, 300_000);

    test("a run after changes in Glance brings each changed image up to date, drops the members of an image no longer shared, and names the images Glance no longer has", async () => {
      const [renamed, unshared, deactivated, deleted] = [
        fleet.withData[2], // image-2: shared
        fleet.shared[1],
        fleet.withData[8],
        fleet.withData[7],
      ] as string[];
      const patch = (id: string, ops: unknown[]) =>
        glance.request("PATCH", `/v2/images/${id}`, { json: ops });
      expect(
        (
          await patch(renamed, [
            { op: "replace", path: "/name", value: "renamed" },
            { op: "remove", path: "/os_version" },
          ])
        ).status,
      ).toBe(200);
      expect((await patch(unshared, [{ op: "replace", path: "/visibility", value: "private" }])).status).toBe(
        200,
      );
      expect((await glance.request("POST", `/v2/images/${deactivated}/actions/deactivate`)).status).toBe(204);
      await glance.request("PATCH", `/v2/images/${deleted}`, {
        json: [{ op: "replace", path: "/protected", value: false }],
      });
      expect((await glance.request("DELETE", `/v2/images/${deleted}`)).status).toBe(204);

      const run = await migrate();
      expect(run.status, run.err).toBe(0);
      const report = reportOf(run.out);
      expect(report.images).toMatchObject({ copied: 0, created: 0, updated: 3, failed: 0 });
      expect(report.notInGlance).toEqual([deleted]);
      await withTessera(async (t) => {
        for (const id of [renamed, unshared, deactivated]) {
          const want = await json(await glance.request("GET", `/v2/images/${id}`));
          const got = await json(await fetch(`${t.url}/v2/images/${id}`));
          for (const k of ["name", "visibility", "status", "updated_at", "os_version"]) {
            expect([id, k, got[k]]).toEqual([id, k, want[k]]);
          }
        }
        // Shared again in Tessera, it has none of the members Glance no longer shows.
        const reshare = await fetch(`${t.url}/v2/images/${unshared}`, {
          method: "PATCH",
          headers: { "Content-Type": "application/openstack-images-v2.1-json-patch" },
          body: JSON.stringify([{ op: "replace", path: "/visibility", value: "shared" }]),
        });
        expect(reshare.status).toBe(200);
        expect((await json(await fetch(`${t.url}/v2/images/${unshared}/members`))).members).toEqual([]);
        // Left alone: deleting it is the operator's call.
        expect((await fetch(`${t.url}/v2/images/${deleted}`)).status).toBe(200);
      });
    }, 300_000);
  },
);

async function json(res: Response): Promise<Record<string, unknown>> {
  expect(res.status, `${res.url}`).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

/** Kills `child` (SIGKILL) once it has reported `n` images copied; or lets it finish first. */
async function killAfterCopies(child: ChildProcess, n: number): Promise<void> {
  const lines = createInterface({ input: child.stderr as NodeJS.ReadableStream });
  let copied = 0;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  lines.on("line", (line) => {
    if (line.includes('"result":"copied"') && ++copied === n) child.kill("SIGKILL");
  });
  await exited;
  expect(copied).toBe(n);
  expect(child.signalCode).toBe("SIGKILL");
}
