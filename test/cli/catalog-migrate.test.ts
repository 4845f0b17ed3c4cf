/**
 * `tessera catalog migrate` as shipped (dist/, built by `npx tsc -p .`), on a real PostgreSQL
 * and a real server's data directory: images uploaded (sharing chunks), members, an import
 * task, owners' quota tallies, a deleted image collected (so condemned chunks and trash exist);
 * the server stopped; the catalog moved to PostgreSQL; a server on it over the same store
 * serves every image byte for byte with the same records; moved back into a fresh LMDB data
 * directory, the same again. A non-empty target is refused (exit 1), bad usage is exit 2.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerOptions } from "../../src/api/server.js";
import { BIN } from "../helpers/child-server.js";
import { prng } from "../helpers/data.js";
import { type Postgres, requirePostgres, startPostgres } from "../helpers/postgres.js";
import { runAsync } from "../helpers/run.js";
import { client, startTestServer, type TestServer } from "../helpers/server.js";
import { waitFor } from "../helpers/wait.js";

const run = requirePostgres("tessera catalog migrate");
const MiB = 1024 * 1024;
const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

type Json = Record<string, unknown>;

/** What the API shows of the catalog: every image, its members and tasks, the caller's usage. */
interface Seen {
  images: Map<string, Json>;
  members: Map<string, unknown>;
  tasks: Map<string, unknown>;
  usage: unknown;
}

describe.skipIf(!run)("tessera catalog migrate", () => {
  let pg: Postgres;
  let work: string;
  let config: string;
  let stores: ServerOptions["stores"];
  const servers: TestServer[] = [];
  /** Each image's bytes, by id (the deleted one is gone). */
  const data = new Map<string, Buffer>();

  const tessera = (...args: string[]) => runAsync(process.execPath, [BIN, ...args]);
  const server = async (dir: string, over: Partial<ServerOptions> = {}) => {
    const s = await startTestServer({ stores, gcIntervalSeconds: 0, scrubIntervalSeconds: 0, ...over }, dir);
    servers.push(s);
    return s;
  };
  const stop = async (s: TestServer) => {
    await s.close();
    servers.splice(servers.indexOf(s), 1);
  };

  async function seen(s: TestServer): Promise<Seen> {
    const api = client(() => s.url);
    const json = async (p: string) => {
      const res = await api.get(p);
      expect(res.status, p).toBe(200);
      return (await res.json()) as Json;
    };
    const list = (await json("/v2/images?limit=1000")) as { images: Json[] };
    const out: Seen = {
      images: new Map(),
      members: new Map(),
      tasks: new Map(),
      usage: await json("/v2/info/usage"),
    };
    for (const img of list.images) {
      const id = img.id as string;
      out.images.set(id, await json(`/v2/images/${id}`));
      out.members.set(id, await json(`/v2/images/${id}/members`));
      out.tasks.set(id, await json(`/v2/images/${id}/tasks`));
    }
    return out;
  }

  /** Every image downloads with the bytes uploaded, and the API shows what it showed before. */
  async function expectSame(s: TestServer, before: Seen): Promise<void> {
    const now = await seen(s);
    expect([...now.images.keys()].sort()).toEqual([...before.images.keys()].sort());
    for (const [id, rec] of before.images) {
      expect(now.images.get(id), id).toEqual(rec);
      expect(now.members.get(id)).toEqual(before.members.get(id));
      expect(now.tasks.get(id)).toEqual(before.tasks.get(id));
    }
    expect(now.usage).toEqual(before.usage);
    for (const [id, bytes] of data) {
      const res = await fetch(`${s.url}/v2/images/${id}/file`);
      expect(res.status).toBe(200);
      expect(md5(Buffer.from(await res.arrayBuffer())), id).toBe(md5(bytes));
    }
  }

  beforeAll(async () => {
    pg = await startPostgres();
    work = await mkdtemp(join(tmpdir(), "tessera-migrate-"));
    stores = { local: { type: "filesystem", path: join(work, "store") } };
    config = join(work, "tessera.json");
    await writeFile(config, JSON.stringify({ stores, defaultStore: "local" }));
  }, 60_000);
  afterAll(async () => {
    for (const s of servers) await s.close();
    await pg?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("moves a served catalog to PostgreSQL and back, every record and download the same", async () => {
    const dirA = join(work, "a");
    const a = await server(dirA);
    const api = client(() => a.url);
    const base = Buffer.from(prng(1, 3 * MiB));
    const derived = Buffer.concat([base.subarray(0, 2 * MiB), Buffer.from(prng(2, MiB))]);
    const make = async (name: string, owner: string, bytes: Buffer) => {
      const img = await api.createImage({ name, owner, disk_format: "raw", container_format: "bare" });
      expect((await api.upload(img.id, bytes)).status).toBe(204);
      data.set(img.id, bytes);
      return img.id;
    };
    const one = await make("base", "proj-a", base);
    await make("derived", "proj-a", derived);
    await make("other", "proj-b", Buffer.from(prng(3, 2 * MiB)));
    const doomed = await make("doomed", "proj-b", Buffer.from(prng(4, MiB + 17)));
    await api.createImage({ name: "never uploaded", disk_format: "raw", container_format: "bare" });

    // Shared with two projects, one of which accepts.
    expect((await api.patch(one, [{ op: "replace", path: "/visibility", value: "shared" }])).status).toBe(
      200,
    );
    for (const member of ["proj-x", "proj-y"]) {
      const res = await api.request("POST", `/v2/images/${one}/members`, {
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ member }),
      });
      expect(res.status).toBe(200);
    }
    // An import (stage + glance-direct): a task record, kept after it ends.
    const imported = (
      await api.createImage({ name: "imported", disk_format: "raw", container_format: "bare" })
    ).id;
    const staged = Buffer.concat([base.subarray(MiB), Buffer.from(prng(5, 512 * 1024))]);
    const stage = await api.request("PUT", `/v2/images/${imported}/stage`, {
      headers: { "content-type": "application/octet-stream" },
      body: new Uint8Array(staged),
    });
    expect(stage.status).toBe(204);
    const imp = await api.request("POST", `/v2/images/${imported}/import`, {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ method: { name: "glance-direct" } }),
    });
    expect(imp.status).toBe(202);
    await waitFor("the import", async () => {
      const img = (await (await api.get(`/v2/images/${imported}`)).json()) as Json;
      return img.status === "active" && !("os_glance_import_task" in img);
    });
    data.set(imported, staged);

    // A deleted image, collected with the default grace: its chunks condemned, its pack trashed.
    expect((await api.request("DELETE", `/v2/images/${doomed}`)).status).toBe(204);
    data.delete(doomed);
    const gc = await api.request("POST", "/tessera/v1/gc", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({}),
    });
    expect(gc.status).toBe(200);
    const before = await seen(a);
    expect(before.images.size).toBe(5);
    await stop(a);

    // LMDB → PostgreSQL.
    const url = await pg.createDatabase();
    const to = await tessera("catalog", "migrate", "--to", url, "--config", config, "--data", dirA);
    expect(to.status, to.err).toBe(0);
    expect(to.err).toMatch(/copy: 100%/);
    const report = JSON.parse(to.out) as { copied: Record<string, number>; check: Json };
    expect(report.copied).toMatchObject({ image: 5, member: 2, task: 1, usage: 3 });
    for (const kind of ["chunk", "pack", "trash", "condemned", "manifest", "object", "meta"])
      expect(report.copied[kind], kind).toBeGreaterThan(0);
    expect(report.check).toMatchObject({
      counts: report.copied,
      viaInterface: { stores: ["local"], images: 5 },
    });

    const b = await server(join(work, "b"), { catalog: { type: "postgres", url } });
    await expectSame(b, before);
    await stop(b);

    // PostgreSQL → a fresh LMDB data directory, over the same store.
    const dirC = join(work, "c");
    const from = await tessera("catalog", "migrate", "--from", url, "--config", config, "--data", dirC);
    expect(from.status, from.err).toBe(0);
    expect((JSON.parse(from.out) as { copied: unknown }).copied).toEqual(report.copied);
    const c = await server(dirC);
    await expectSame(c, before);
    // The moved catalog goes on working: GC with no grace deletes what the first run trashed.
    const again = await client(() => c.url).request("POST", "/tessera/v1/gc", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ graceSeconds: 0 }),
    });
    expect(again.status).toBe(200);
    await expectSame(c, before);
    await stop(c);

    // Into a catalog that is not empty: refused, nothing written.
    const full = await tessera("catalog", "migrate", "--to", url, "--config", config, "--data", dirA);
    expect(full.status).toBe(1);
    expect(full.err).toMatch(/catalog_not_empty.*is not empty/);
    const back = await tessera("catalog", "migrate", "--from", url, "--config", config, "--data", dirA);
    expect(back.status).toBe(1);
    expect(back.err).toMatch(/is not empty/);
  }, 180_000);

  it("exits 2 on usage errors", async () => {
    for (const args of [
      ["catalog"],
      ["catalog", "migrate"],
      ["catalog", "move", "--to", "postgres://x/y"],
      ["catalog", "migrate", "--to", "mysql://x/y"],
      ["catalog", "migrate", "--to", "postgres://x/y", "--from", "postgres://x/z"],
    ]) {
      const r = await tessera(...args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.err).toContain("tessera catalog migrate --to");
    }
  });
});
