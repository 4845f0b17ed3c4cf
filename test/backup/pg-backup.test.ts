/**
 * `tessera backup` of a Tessera on a PostgreSQL catalog (pg_dump) and a filesystem store while
 * it serves, with an upload in flight, and `tessera restore` into a new database, a new store
 * and a new data directory (pg_restore), as shipped (dist/) on a real PostgreSQL: every image
 * downloads intact from a server on the restored data; the upload in flight is queued there.
 * A database that is not empty is refused. A catalog of an older schema (the one before
 * metadata definitions) is backed up as it is, and its restored copy is served only once the
 * server is started with --allow-migrate (docs/operations.md, "Upgrading").
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  expectAbsentOrIntact,
  expectImagesIntact,
  holdUpload,
  md5,
  tessera,
  uploadImage,
} from "../helpers/backup.js";
import { type ChildServer, startChildServer } from "../helpers/child-server.js";
import { prng } from "../helpers/data.js";
import { type Postgres, requirePostgres, startPostgres } from "../helpers/postgres.js";

const run = requirePostgres("backup and restore of a PostgreSQL catalog");
const MiB = 1024 * 1024;

describe.skipIf(!run)("backup and restore of a Tessera on PostgreSQL", () => {
  let postgres: Postgres;
  let work: string;
  const servers: ChildServer[] = [];

  /** A configuration file for a node on database `url` and a store in `store`. */
  async function configFor(name: string, url: string, store: string): Promise<string> {
    const file = join(work, `${name}.json`);
    const cfg = {
      catalog: { type: "postgres", url },
      stores: { local: { type: "filesystem", path: store } },
      defaultStore: "local",
      workers: 1,
      gcIntervalSeconds: 0,
      scrubIntervalSeconds: 0,
    };
    await writeFile(file, JSON.stringify(cfg));
    return file;
  }

  async function serve(dataDir: string, config: string): Promise<ChildServer> {
    const s = await startChildServer(dataDir, config);
    servers.push(s);
    return s;
  }

  beforeAll(async () => {
    postgres = await startPostgres();
    work = await mkdtemp(join(tmpdir(), "tessera-pg-backup-"));
  }, 60_000);
  afterAll(async () => {
    for (const s of servers) await s.kill();
    await postgres?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("dumps while serving with an upload in flight; a new database and store restored from it serve every image intact", async () => {
    const urlA = await postgres.createDatabase();
    const configA = await configFor("a", urlA, join(work, "store-a"));
    const a = await serve(join(work, "a"), configA);
    const sums = new Map<string, string>();
    const base = Buffer.from(prng(21, 3 * MiB));
    for (const [name, bytes] of [
      ["base", base],
      ["derived", Buffer.concat([base.subarray(0, 2 * MiB), Buffer.from(prng(22, MiB))])],
      ["other", Buffer.from(prng(23, MiB + 3))],
    ] as const) {
      sums.set(await uploadImage(a.url, name, bytes), md5(bytes));
    }
    const flying = Buffer.from(prng(24, 4 * MiB));
    const held = await holdUpload(a.url, flying, MiB);

    const to = join(work, "backup");
    const made = await tessera("backup", "--to", to, "--data", join(work, "a"), "--config", configA);
    expect(made.status, made.err).toBe(0);
    expect(JSON.parse(made.out)).toMatchObject({
      catalog: { kind: "postgres", path: "catalog.pgdump", schema: 3 },
      stores: [{ name: "local", copied: true }],
      gcHeldBy: "lease",
    });
    expect(await held.finish()).toBe(204);

    // The original's database is not empty: refused before anything is written.
    const refused = await tessera("restore", "--from", to, "--data", join(work, "x"), "--config", configA);
    expect(refused.status).toBe(1);
    expect(refused.err).toMatch(/database is not empty/);

    const urlB = await postgres.createDatabase();
    const configB = await configFor("b", urlB, join(work, "store-b"));
    const restored = await tessera("restore", "--from", to, "--data", join(work, "b"), "--config", configB);
    expect(restored.status, restored.err).toBe(0);
    const report = JSON.parse(restored.out);
    expect(report).toMatchObject({ catalog: "postgres", stores: [{ name: "local", restored: true }] });
    expect(report.stores[0].packsChecked).toBeGreaterThan(0);
    expect(report.leasesDropped).toBeGreaterThan(0);

    const b = await serve(join(work, "b"), configB);
    await expectImagesIntact(b.url, sums);
    expect(await expectAbsentOrIntact(b.url, held.id, md5(flying))).toBe("queued");
    const next = Buffer.concat([base, Buffer.from(prng(25, MiB))]);
    await expectImagesIntact(b.url, new Map([[await uploadImage(b.url, "after", next), md5(next)]]));
  }, 180_000);

  it("backs up a catalog of an older schema as it is; the restored one is served only once started with --allow-migrate", async () => {
    const url = await postgres.createDatabase();
    const store = join(work, "store-old");
    const config = await configFor("old", url, store);
    const s = await serve(join(work, "old"), config);
    const bytes = Buffer.from(prng(26, 2 * MiB));
    const sums = new Map([[await uploadImage(s.url, "old", bytes), md5(bytes)]]);
    await s.kill();
    servers.splice(servers.indexOf(s), 1);
    // As the release before schema 3 left it.
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query("DROP TABLE metadef_namespaces, metadef_resource_types");
    await client.query("UPDATE tessera_schema SET version = 2");
    await client.end();
    await expect(startChildServer(join(work, "old"), config)).rejects.toThrow(/exited with 1/);

    const to = join(work, "backup-old");
    const made = await tessera("backup", "--to", to, "--data", join(work, "old"), "--config", config);
    expect(made.status, made.err).toBe(0);
    expect(JSON.parse(made.out).catalog).toMatchObject({ kind: "postgres", schema: 2 });

    const urlB = await postgres.createDatabase();
    const restoredConfig = await configFor("old-b", urlB, join(work, "store-old-b"));
    const restored = await tessera(
      "restore",
      "--from",
      to,
      "--data",
      join(work, "old-b"),
      "--config",
      restoredConfig,
    );
    expect(restored.status, restored.err).toBe(0);
    await expect(startChildServer(join(work, "old-b"), restoredConfig)).rejects.toThrow(/exited with 1/);
    const b = await startChildServer(join(work, "old-b"), restoredConfig, ["--allow-migrate"]);
    servers.push(b);
    await expectImagesIntact(b.url, sums);
    expect((await fetch(`${b.url}/v2/metadefs/namespaces`)).status).toBe(200);
  }, 180_000);
});
