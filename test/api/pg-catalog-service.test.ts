/**
 * The image service on a PostgreSQL catalog (a real PostgreSQL this test starts), over real
 * HTTP: the Images API end to end; two nodes (two data directories) sharing the database and a
 * filesystem store, one serving what the other uploaded and deduplicating against it, and
 * one starting while the other uploads; metadefs changed on one node as the other shows them;
 * and 503s while the database is down, the same node serving again once it is back.
 */
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prng } from "../helpers/data.js";
import { type Postgres, requirePostgres, startPostgres } from "../helpers/postgres.js";
import { client, startTestServer, type TestServer } from "../helpers/server.js";

const run = requirePostgres("the image service on a PostgreSQL catalog");
const MiB = 1024 * 1024;
const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

describe.skipIf(!run)("the image service on a PostgreSQL catalog", () => {
  let pg: Postgres;
  let work: string;
  let url: string;
  const servers: TestServer[] = [];
  const node = async (name: string) => {
    const s = await startTestServer(
      {
        catalog: { type: "postgres", url },
        stores: { local: { type: "filesystem", path: join(work, "shared-store") } },
        gcIntervalSeconds: 0,
        scrubIntervalSeconds: 0,
      },
      await mkdtemp(join(work, `${name}-`)),
    );
    servers.push(s);
    return s;
  };

  beforeAll(async () => {
    pg = await startPostgres();
    url = await pg.createDatabase();
    work = await mkdtemp(join(tmpdir(), "tessera-pg-service-"));
  }, 60_000);
  afterAll(async () => {
    for (const s of servers) await s.close();
    await pg?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("creates, uploads, lists, downloads and deletes images", async () => {
    const s = await node("a");
    const api = client(() => s.url);
    // Twice the same 8 MiB: more chunks than one batched lookup takes (256 > 128), and the
    // second half's found among the first's, written earlier in the same upload.
    const half = Buffer.from(prng(7, 8 * MiB));
    const data = Buffer.concat([half, half]);
    const img = await api.createImage({ name: "pg-one", disk_format: "raw", container_format: "bare" });
    expect((await api.upload(img.id, data)).status).toBe(204);
    const got = await api.get(`/v2/images/${img.id}/file`);
    expect(got.status).toBe(200);
    expect(md5(Buffer.from(await got.arrayBuffer()))).toBe(md5(data));
    const shown = (await (await api.get(`/v2/images/${img.id}`)).json()) as Record<string, unknown>;
    expect(shown).toMatchObject({ status: "active", size: data.length, checksum: md5(data) });
    const list = (await (await api.get("/v2/images?sort=name:asc")).json()) as { images: { id: string }[] };
    expect(list.images.map((i) => i.id)).toContain(img.id);
    expect((await api.request("DELETE", `/v2/images/${img.id}`)).status).toBe(204);
    expect((await api.get(`/v2/images/${img.id}`)).status).toBe(404);
  });

  it("serves on one node what another uploaded, and an upload on the second deduplicates against the first", async () => {
    const [a, b] = [await node("n1"), await node("n2")];
    const data = Buffer.from(prng(8, 4 * MiB));
    const one = await client(() => a.url).createImage({
      name: "base",
      disk_format: "raw",
      container_format: "bare",
    });
    expect((await client(() => a.url).upload(one.id, data)).status).toBe(204);
    const fromB = await client(() => b.url).get(`/v2/images/${one.id}/file`);
    expect(md5(Buffer.from(await fromB.arrayBuffer()))).toBe(md5(data));
    const before = await dirBytes(join(work, "shared-store"));
    const two = await client(() => b.url).createImage({
      name: "copy",
      disk_format: "raw",
      container_format: "bare",
    });
    expect((await client(() => b.url).upload(two.id, data)).status).toBe(204);
    const shown = (await (await client(() => a.url).get(`/v2/images/${two.id}`)).json()) as Record<
      string,
      unknown
    >;
    expect(shown.status).toBe("active");
    // Only the second image's manifest was written: every chunk was found in the shared index.
    expect((await dirBytes(join(work, "shared-store"))) - before).toBeLessThan(64 * 1024);
  });

  it("makes every image active when uploads of the same new data commit at once, on one node and on two (the race to index its chunks)", async () => {
    const [a, b] = [await node("race1"), await node("race2")];
    for (let round = 0; round < 3; round++) {
      // One base, a tail of each upload's own: the same new chunks in different objects.
      const base = Buffer.from(prng(21 + round, 3 * MiB));
      const nodes = [a, b, a, b];
      const data = nodes.map((_, i) => Buffer.concat([base, Buffer.from(`copy ${i}`)]));
      const images = await Promise.all(
        nodes.map((s, i) =>
          client(() => s.url).createImage({
            name: `race-${round}-${i}`,
            disk_format: "raw",
            container_format: "bare",
          }),
        ),
      );
      const uploads = await Promise.all(
        nodes.map((s, i) => client(() => s.url).upload(images[i]?.id as string, data[i] as Buffer)),
      );
      expect(uploads.map((r) => r.status)).toEqual([204, 204, 204, 204]);
      for (const [i, img] of images.entries()) {
        const got = await client(() => a.url).get(`/v2/images/${img.id}/file`);
        expect(md5(Buffer.from(await got.arrayBuffer()))).toBe(md5(data[i] as Buffer));
      }
    }
  });

  it("keeps metadefs in the shared database: one node's namespace, renamed and given a property, is what the other node shows, properties in their order", async () => {
    const [a, b] = [await node("md-a"), await node("md-b")];
    const json = { "content-type": "application/json" };
    const post = await fetch(`${a.url}/v2/metadefs/namespaces`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({
        namespace: "Shared::NS",
        visibility: "public",
        properties: { zz: { type: "string", title: "Z" }, aa: { type: "string", title: "A" } },
        objects: [
          { name: "o", properties: { y: { type: "string", title: "Y" }, x: { type: "string", title: "X" } } },
        ],
      }),
    });
    expect(post.status).toBe(201);
    const put = await fetch(`${b.url}/v2/metadefs/namespaces/Shared::NS`, {
      method: "PUT",
      headers: json,
      body: JSON.stringify({ namespace: "Shared::Renamed", visibility: "public" }),
    });
    expect(put.status).toBe(200);
    const prop = await fetch(`${b.url}/v2/metadefs/namespaces/Shared::Renamed/properties`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ name: "mm", type: "integer", title: "M" }),
    });
    expect(prop.status).toBe(201);
    expect((await fetch(`${a.url}/v2/metadefs/namespaces/Shared::NS`)).status).toBe(404);
    const shown = (await (await fetch(`${a.url}/v2/metadefs/namespaces/Shared::Renamed`)).json()) as {
      properties: Record<string, unknown>;
      objects: { properties: Record<string, unknown> }[];
    };
    expect(Object.keys(shown.properties)).toEqual(["aa", "mm", "zz"]);
    expect(Object.keys(shown.objects[0]?.properties ?? {})).toEqual(["y", "x"]);
  });

  it("leaves an upload in progress on one node alone when another node starts", async () => {
    const a = await node("busy");
    const api = client(() => a.url);
    const img = await api.createImage({ name: "slow", disk_format: "raw", container_format: "bare" });
    const data = Buffer.from(prng(9, 2 * MiB));
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const body = new ReadableStream<Uint8Array>({
      async start(c) {
        c.enqueue(data.subarray(0, MiB));
        await gate;
        c.enqueue(data.subarray(MiB));
        c.close();
      },
    });
    const put = fetch(`${a.url}/v2/images/${img.id}/file`, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream" },
      body,
      duplex: "half",
    } as RequestInit);
    const statusOf = async () =>
      ((await (await api.get(`/v2/images/${img.id}`)).json()) as { status: string }).status;
    while ((await statusOf()) !== "saving") await new Promise((r) => setTimeout(r, 20));
    // A second node starting looks for uploads a crash cut off: this one's lease is alive.
    await node("late");
    expect(await statusOf()).toBe("saving");
    release();
    expect((await put).status).toBe(204);
    expect(await statusOf()).toBe("active");
  });

  it("answers 503 (and its health check FAILED) while the database is down, and serves again once it is back", async () => {
    const s = await node("down");
    const api = client(() => s.url);
    const img = await api.createImage({ name: "survivor", disk_format: "raw", container_format: "bare" });
    const health = async () => {
      const r = await fetch(`${s.url}/healthcheck`);
      return `${r.status} ${await r.text()}`;
    };
    expect(await health()).toBe("200 OK");
    await pg.stop();
    try {
      // The load balancer's check says so first, and takes the node out of rotation.
      expect(await health()).toBe("503 FAILED");
      const res = await api.get(`/v2/images/${img.id}`);
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("5");
      const create = await fetch(`${s.url}/v2/images`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "never" }),
      });
      expect(create.status).toBe(503);
    } finally {
      await pg.start();
    }
    const back = await api.get(`/v2/images/${img.id}`);
    expect(back.status).toBe(200);
    expect(await health()).toBe("200 OK");
    const names = ((await (await api.get("/v2/images")).json()) as { images: { name: string }[] }).images.map(
      (i) => i.name,
    );
    expect(names).toContain("survivor");
    expect(names).not.toContain("never");
  });
});
