/**
 * A cluster of real parts (test/cluster/cluster.ts): Debian's PostgreSQL as the one catalog,
 * Ceph radosgw (CI) or s3rver as the one store, three `tessera serve` processes on loopback
 * ports and Debian's HAProxy round robin in front of them, driven directly and through HAProxy
 * with the real openstack CLI and openstacksdk. Skipped, saying why, where a part is missing;
 * in CI a missing part fails.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prng } from "../helpers/data.js";
import {
  as,
  type Cluster,
  collect,
  createImage,
  downloadMd5,
  GAMMA_IMAGES,
  gatedUpload,
  getJson,
  listAll,
  md5,
  openstack,
  requireClusterParts,
  sdk,
  startTesseraCluster,
  tessera,
  upload,
} from "./cluster.js";

const run = requireClusterParts("the HAProxy cluster test");
const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Three nodes on one PostgreSQL catalog and one S3 store, behind HAProxy.
describe.skipIf(!run)("a Tessera cluster behind HAProxy", () => {
  let c: Cluster;
  const node = (i: number) => c.nodes[i - 1].url;
  const lb = () => c.haproxy.url;
  /** Every image that should be whole at the end, and its md5. */
  const expected = new Map<string, string>();

  beforeAll(async () => {
    c = await startTesseraCluster();
    console.log(`cluster store: ${c.storeKind}`);
  }, 90_000);
  afterAll(async () => {
    await c?.close();
  }, 60_000);

  it("an upload on node 2 of bytes node 1 stored adds no chunk to the store (a manifest at most), node 3 serves both whole, and the openstack CLI and openstacksdk upload and download through HAProxy", {
    timeout: 60_000,
  }, async () => {
    const data = prng(101, 6 * MiB + 123);
    const first = await upload("admin", node(1), "dedup-1", data);
    const before = await c.storeObjects();
    type Stats = { total: { storedBytes: number; logicalBytes: number } };
    const statsBefore = await getJson<Stats>("admin", node(2), "/tessera/v1/stats");
    const second = await upload("admin", node(2), "dedup-2", data);
    const after = await c.storeObjects();
    // Every chunk was found in the shared index: the store grew by a manifest at most (none when
    // the object, named by its manifest, is already there), not by 6 MiB.
    console.log(`dedup: +${after.count - before.count} objects, +${after.bytes - before.bytes} bytes`);
    expect(after.count - before.count).toBeLessThanOrEqual(2);
    expect(after.bytes - before.bytes).toBeLessThan(64 * 1024);
    const statsAfter = await getJson<Stats>("admin", node(3), "/tessera/v1/stats");
    expect(statsAfter.total.storedBytes).toBe(statsBefore.total.storedBytes);
    expect(statsAfter.total.logicalBytes - statsBefore.total.logicalBytes).toBe(data.length);
    for (const id of [first, second]) {
      expect(await downloadMd5("admin", node(3), id)).toBe(md5(data));
      expected.set(id, md5(data));
    }

    // The real clients through HAProxy: each of their requests may reach any node.
    const cliData = prng(102, 5 * MiB + 7);
    await writeFile(join(c.work, "cli.raw"), cliData);
    const create = "image create --file cli.raw --disk-format raw --container-format bare cli-image -f json";
    const created = await openstack("alice", lb(), c.work, ...create.split(" "));
    expect(created.status, created.err).toBe(0);
    const cliId = (JSON.parse(created.out) as { id: string }).id;
    const shown = await openstack("alice", lb(), c.work, "image", "show", cliId, "-f", "json");
    expect(JSON.parse(shown.out)).toMatchObject({
      status: "active",
      checksum: md5(cliData),
      size: cliData.length,
    });
    expected.set(cliId, md5(cliData));
    const saved = await openstack("admin", lb(), c.work, "image", "save", "--file", "saved.raw", first);
    expect(saved.status, saved.err).toBe(0);
    expect(md5(await readFile(join(c.work, "saved.raw")))).toBe(md5(data));

    const sdkData = prng(103, 3 * MiB + 1);
    await writeFile(join(c.work, "sdk.raw"), sdkData);
    const r = await sdk("alice", lb(), c.work, join(c.work, "sdk.raw"), cliId);
    expect(r.status, r.err).toBe(0);
    const out = JSON.parse(r.out) as {
      id: string;
      status: string;
      checksum: string;
      downloaded_md5: string;
    };
    expect(out).toMatchObject({ status: "active", checksum: md5(sdkData), downloaded_md5: md5(cliData) });
    expected.set(out.id, md5(sdkData));
    // Every node, asked directly, tells the same of the SDK's image.
    for (const i of [1, 2, 3]) {
      const img = await getJson<object>("alice", node(i), `/v2/images/${out.id}`);
      expect(img).toMatchObject({ status: "active", checksum: md5(sdkData), owner: "alpha" });
    }
  });

  it("a member added on one node is seen, accepted and listed on the others, and project gamma's image count limit holds whichever node gets the request, creates racing on all three included", async () => {
    const data = prng(201, 300_000);
    const id = await upload("alice", node(1), "shared-one", data);
    expected.set(id, md5(data));
    expect((await as("alice", node(1))("POST", `/v2/images/${id}/members`, { member: "beta" })).status).toBe(
      200,
    );
    for (const i of [2, 3]) {
      type Members = { members: { member_id: string; status: string }[] };
      const m = await getJson<Members>("alice", node(i), `/v2/images/${id}/members`);
      expect(m.members.map((x) => [x.member_id, x.status])).toEqual([["beta", "pending"]]);
    }
    const accept = await as("bob", node(2))("PUT", `/v2/images/${id}/members/beta`, { status: "accepted" });
    expect(accept.status).toBe(200);
    for (const i of [1, 3]) {
      const m = await getJson<{ status: string }>("bob", node(i), `/v2/images/${id}/members/beta`);
      expect(m.status).toBe("accepted");
      expect((await listAll("bob", node(i))).map((x) => x.id)).toContain(id);
    }
    expect(await downloadMd5("bob", node(3), id)).toBe(md5(data));

    // Quotas: gamma may own GAMMA_IMAGES images. One create on each node, then racing creates
    // through HAProxy (round robin: every node gets some): the catalog's tally is the one limit.
    const create = (base: string, name: string) => createImage("carol", base, name);
    expect((await create(node(1), "g-1")).status).toBe(201);
    expect((await create(node(2), "g-2")).status).toBe(201);
    const racing = await Promise.all(Array.from({ length: 6 }, (_, k) => create(lb(), `g-race-${k}`)));
    const statuses = racing.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 413, 413, 413, 413, 413]);
    expect(new Set(racing.map((r) => r.headers.get("x-served-by"))).size).toBe(3);
    expect((await create(node(3), "g-late")).status).toBe(413);
    for (const i of [1, 2, 3]) {
      type Usage = { usage: Record<string, { limit: number; usage: number }> };
      const { usage } = await getJson<Usage>("carol", node(i), "/v2/info/usage");
      expect(usage.image_count_total).toEqual({ limit: GAMMA_IMAGES, usage: GAMMA_IMAGES });
      expect(await listAll("carol", node(i))).toHaveLength(GAMMA_IMAGES);
    }
  });
  it("tessera gc reaches the running node and tessera fsck checks the store, given a node's data directory on a PostgreSQL catalog", async () => {
    const gc = await tessera("gc", "--dry-run", "--data", c.dataDirs[0], "--config", c.configFile);
    expect(gc.status, gc.err).toBe(0);
    const fsck = await tessera("fsck", "--data", c.dataDirs[1], "--config", c.configFile);
    expect(fsck.status, fsck.err).toBe(0);
  });

  it("garbage collection run on node 1 while nodes 2 and 3 upload and download leaves every image whole (md5 through HAProxy) and fsck clean, and deletes what was dead", {
    timeout: 60_000,
  }, async () => {
    const base = prng(501, 4 * MiB);
    const derived = new Uint8Array(6 * MiB);
    derived.set(base);
    derived.set(prng(502, 2 * MiB), 4 * MiB);
    const revived = prng(503, 3 * MiB);
    const dead = prng(504, 3 * MiB);
    const ids: Record<string, string> = {};
    for (const [name, data] of Object.entries({ base, derived, revived, dead })) {
      ids[name] = await upload("admin", lb(), `gc-${name}`, data);
    }
    expected.set(ids.derived, md5(derived));
    // base's chunks live on in derived; revived's and dead's are garbage, revived's uploaded
    // again below while the collection runs.
    for (const name of ["base", "revived", "dead"]) {
      expect((await as("admin", lb())("DELETE", `/v2/images/${ids[name]}`)).status).toBe(204);
    }

    let stop = false;
    const failures: string[] = [];
    const traffic = async (i: 2 | 3) => {
      for (let k = 0; !stop; k++) {
        const data = k % 2 === 0 ? revived : prng(600 + i * 100 + k, MiB + k);
        try {
          const id = await upload("admin", node(i), `gc-traffic-${i}-${k}`, data);
          expected.set(id, md5(data));
          const all = [...expected.entries()];
          const [other, sum] = all[(k * 7 + i) % all.length];
          const got = await downloadMd5("admin", node(i), other);
          if (got !== sum) failures.push(`node ${i}: ${other} md5 ${got}, expected ${sum}`);
        } catch (e) {
          failures.push(`node ${i}: ${(e as Error).message}`);
        }
      }
    };
    const running = [traffic(2), traffic(3)];
    // `tessera gc` cannot reach a node on PostgreSQL (the test above): its route instead, on
    // node 1, with gcGraceSeconds (2 s): the run after the grace deletes what one before
    // trashed. Two runs amid the traffic, a last one once it stopped (no upload then holds
    // the trash back).
    const reports = [];
    for (const wait of [500, 2500]) {
      await sleep(wait);
      reports.push(await collect(node(1), 2));
    }
    stop = true;
    await Promise.all(running);
    await sleep(2000);
    reports.push(await collect(node(1), 2));
    expect(failures).toEqual([]);
    expect(reports.reduce((n, r) => n + r.chunksDropped, 0)).toBeGreaterThan(0);
    expect(reports.reduce((n, r) => n + r.objectsDeleted, 0)).toBeGreaterThan(0);

    // Every image whole through HAProxy, the listing's checksums included.
    const listed = new Map((await listAll("admin", lb())).map((i) => [i.id, i.checksum]));
    for (const [id, sum] of expected) {
      expect(listed.get(id), id).toBe(sum);
      expect(await downloadMd5("admin", lb(), id), id).toBe(sum);
    }
    // fsck reads beside the servers; its data directory check wants an LMDB file (the test
    // above), so it is given a directory with an empty one: the catalog it opens is PostgreSQL.
    await mkdir(join(c.work, "fsck", "catalog"), { recursive: true });
    await writeFile(join(c.work, "fsck", "catalog", "data.mdb"), "");
    const fsck = await tessera("fsck", "--data", join(c.work, "fsck"), "--config", c.configFile);
    expect(fsck.status, fsck.err).toBe(0);
    const report = JSON.parse(fsck.out) as { stores: Record<string, unknown>[] };
    expect(report.stores[0]).toMatchObject({
      badChunks: 0,
      missingChunks: 0,
      missingPacks: 0,
      damagedObjects: [],
    });
    expect(report.stores[0].chunksChecked).toBeGreaterThan(0);
  });

  it("with PostgreSQL stopped in the middle of creates, uploads and lists through HAProxy, every node answers 503 with Retry-After (never 500) until HAProxy's health checks take them out, leaves no image made without its data or its create answered, and the same three processes serve again once it is back", {
    timeout: 60_000,
  }, async () => {
    interface Answer {
      what: string;
      status: number;
      retryAfter: string | null;
      node: string | null;
      start: number;
      end: number;
    }
    const answers: Answer[] = [];
    const made = new Map<string, { id?: string; uploaded: boolean; md5: string }>();
    const call = async (what: string, method: string, path: string, body?: unknown) => {
      const start = Date.now();
      const res = await as("admin", lb())(method, path, body);
      const text = await res.text();
      answers.push({
        what,
        status: res.status,
        retryAfter: res.headers.get("retry-after"),
        node: res.headers.get("x-served-by"),
        start,
        end: Date.now(),
      });
      if (res.status === 503) await sleep(20); // a client backing off, not a busy loop
      return { status: res.status, text };
    };
    let stop = false;
    let n = 0;
    const loop = async () => {
      while (!stop) {
        const name = `pg-loop-${n++}`;
        const data = prng(1000 + n, 128 * 1024 + n);
        const entry: { id?: string; uploaded: boolean; md5: string } = { uploaded: false, md5: md5(data) };
        made.set(name, entry);
        const body = { name, disk_format: "raw", container_format: "bare" };
        const created = await call("create", "POST", "/v2/images", body);
        if (created.status === 201) {
          entry.id = (JSON.parse(created.text) as { id: string }).id;
          entry.uploaded = (await call("upload", "PUT", `/v2/images/${entry.id}/file`, data)).status === 204;
        }
        await call("list", "GET", "/v2/images?limit=5");
      }
    };
    const loops = [loop(), loop(), loop()];
    await sleep(1500);
    const pids = c.nodes.map((x) => x.child.pid);
    await c.pg.stop();
    const down = Date.now();
    await sleep(4000);
    const up = Date.now();
    await c.pg.start();
    // Until a create, an upload and a list succeed again through HAProxy.
    const resumed = () => answers.filter((a) => a.start > up && a.status < 300).map((a) => a.what);
    const deadline = Date.now() + 20_000;
    while (!["create", "upload", "list"].every((w) => resumed().includes(w)) && Date.now() < deadline) {
      await sleep(100);
    }
    stop = true;
    await Promise.all(loops);
    expect(resumed()).toEqual(expect.arrayContaining(["create", "upload", "list"]));

    // Each answer is a node's (HAProxy names it): a success, or 503 with Retry-After; or,
    // once /healthcheck has failed on every node, HAProxy's own 503 (no node named).
    for (const a of answers) {
      if (a.node === null) expect([a.status, a.start > down]).toEqual([503, true]);
      else expect([200, 201, 204, 503], JSON.stringify(a)).toContain(a.status);
      if (a.status === 503 && a.node) expect(a.retryAfter).toBe("5");
    }
    const whileDown = answers.filter((a) => a.start > down && a.end < up);
    expect(whileDown.every((a) => a.status === 503)).toBe(true);
    expect(new Set(whileDown.map((a) => a.node ?? "haproxy"))).toEqual(
      new Set(["n1", "n2", "n3", "haproxy"]),
    );
    expect(c.haproxy.log()).toMatch(/Server tessera\/n\d is DOWN/);
    expect(answers.filter((a) => a.end < down && a.status < 300).length).toBeGreaterThan(3);
    const own = (a: Answer) => a.node === null;
    console.log(
      `outage: ${answers.length} answers, ${whileDown.filter((a) => !own(a)).length} nodes' 503s and ` +
        `${answers.filter(own).length} HAProxy's; served again ${Math.min(...answers.filter((a) => a.start > up && a.status < 300).map((a) => a.end)) - up} ms after pg.start() began`,
    );

    // Nothing half made: what answered 201 is there, what did not is not; an upload that did
    // not answer 204 left its image queued, one that did left it active and whole.
    const listed = new Map((await listAll("admin", lb())).map((i) => [i.name, i]));
    for (const [name, e] of made) {
      const img = listed.get(name);
      if (!e.id) {
        expect(img, `${name}: its create failed, yet it exists`).toBeUndefined();
        continue;
      }
      expect(img?.id).toBe(e.id);
      if (e.uploaded) {
        expect(img).toMatchObject({ status: "active", checksum: e.md5 });
        expected.set(e.id, e.md5);
      } else {
        // "saving" is the bug the next test shows: it should be queued again.
        expect(["queued", "saving"], `${name}: upload failed`).toContain(img?.status);
        expect(img?.checksum ?? null).toBeNull();
      }
    }
    // The same processes, none restarted, each serving on its own.
    expect(c.nodes.map((x) => x.child.pid)).toEqual(pids);
    for (const [k, x] of c.nodes.entries()) {
      expect(x.child.exitCode).toBeNull();
      const data = prng(300 + k, 200_000);
      const id = await upload("admin", x.url, `after-pg-${k}`, data);
      expect(await downloadMd5("admin", x.url, id)).toBe(md5(data));
      expected.set(id, md5(data));
    }
  });

  it("an upload cut off by PostgreSQL going down answers 503 and its image is queued again once the database is back, so the client can upload again without a node restart", {
    timeout: 60_000,
  }, async () => {
    const call = as("admin", node(1));
    const { id } = (await (await createImage("admin", node(1), "cut-off")).json()) as { id: string };
    const data = prng(400, 3 * MiB);
    const put = gatedUpload(node(1), id, data, MiB);
    const status = async () =>
      (await getJson<{ status: string }>("admin", node(1), `/v2/images/${id}`)).status;
    while ((await status()) !== "saving") await sleep(20);
    await c.pg.stop();
    try {
      put.release();
      expect(await put.answer).toBe(503);
    } finally {
      await c.pg.start();
    }
    const deadline = Date.now() + 8_000;
    let now = await status().catch(() => "unknown");
    while (now !== "queued" && Date.now() < deadline) {
      await sleep(250);
      now = await status().catch(() => "unknown");
    }
    expect(now).toBe("queued");
    expect((await call("PUT", `/v2/images/${id}/file`, data)).status).toBe(204);
    expected.set(id, md5(data));
  });

  it("once PostgreSQL is back, garbage made afterwards is deleted when its grace is over", async () => {
    const id = await upload("admin", node(3), "gc-after-outage", prng(700, 2 * MiB));
    expect((await as("admin", node(3))("DELETE", `/v2/images/${id}`)).status).toBe(204);
    const gc = () => collect(node(2), 1);
    expect((await gc()).packsTrashed).toBeGreaterThan(0);
    await sleep(1500);
    expect((await gc()).objectsDeleted).toBeGreaterThan(0);
  });
});
