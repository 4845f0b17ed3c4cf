/**
 * A data directory written by an earlier release opens and serves with this code. Each
 * fixture in test/fixtures/upgrade (release-SHORT.tar.gz, with release-SHORT.json saying what
 * is in it and which commit wrote it) was made by scripts/make-upgrade-fixture.sh from that
 * commit; the release that changes a format adds its own (docs/operations.md, "Upgrading").
 * Extracted to a temp directory, served by the shipped server (dist/): every image lists with
 * its record, tags, members and hidden flag as the old release answered; every image with
 * data downloads with its md5; the deleted image stays gone and a collection finishes its
 * trash; a new image deduplicated against the old ones uploads and downloads intact; the
 * parts the old release did not have (metadata definitions) work.
 */
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { collectNow, expectImagesIntact, md5, uploadImage } from "../helpers/backup.js";
import { type ChildServer, startChildServer } from "../helpers/child-server.js";
import { prng } from "../helpers/data.js";
import { runAsync } from "../helpers/run.js";

const FIXTURES = new URL("../fixtures/upgrade/", import.meta.url).pathname;

interface FixtureImage {
  id: string;
  name: string;
  status: string;
  size: number | null;
  md5: string | null;
  checksum: string | null;
  tags: string[];
  os_hidden: boolean;
  visibility: string;
  os_distro: string | null;
  members: string[];
}

interface Fixture {
  commit: string;
  subject: string;
  images: FixtureImage[];
  deleted: string[];
}

const fixtures = readdirSync(FIXTURES)
  .filter((f) => /^release-[0-9a-f]+\.json$/.test(f))
  .map((f) => ({ file: f, ...(JSON.parse(readFileSync(join(FIXTURES, f), "utf8")) as Fixture) }));

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function json(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url);
  expect(res.status, url).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

it("has at least one earlier release's data directory to open", () => {
  expect(fixtures.length).toBeGreaterThan(0);
});

describe.each(fixtures)("a data directory written by $file", (fixture) => {
  it(`(commit ${fixture.commit.slice(0, 7)}) opens and serves every image as that release left it`, async () => {
    const work = await mkdtemp(join(tmpdir(), "tessera-upgrade-"));
    cleanups.push(() => rm(work, { recursive: true, force: true }));
    const data = join(work, "data");
    const untar = await runAsync("sh", [
      "-c",
      'mkdir -p "$1" && tar -xzf "$2" -C "$1"',
      "sh",
      data,
      join(FIXTURES, fixture.file.replace(/\.json$/, ".tar.gz")),
    ]);
    expect(untar.status, untar.err).toBe(0);
    const config = join(work, "tessera.json");
    await writeFile(config, JSON.stringify({ workers: 1, gcIntervalSeconds: 0, scrubIntervalSeconds: 0 }));
    const server: ChildServer = await startChildServer(data, config);
    cleanups.push(() => server.kill());
    const { url } = server;

    const listed = (await json(`${url}/v2/images?limit=1000`)).images as { id: string }[];
    const hidden = (await json(`${url}/v2/images?limit=1000&os_hidden=true`)).images as { id: string }[];
    const shown = (img: FixtureImage) => (img.os_hidden ? hidden : listed).some((l) => l.id === img.id);
    for (const img of fixture.images) {
      expect(shown(img), `${img.name} listed`).toBe(true);
      const rec = await json(`${url}/v2/images/${img.id}`);
      expect(
        {
          status: rec.status,
          size: rec.size,
          checksum: rec.checksum,
          tags: [...(rec.tags as string[])].sort(),
          os_hidden: rec.os_hidden,
          visibility: rec.visibility,
          os_distro: rec.os_distro ?? null,
        },
        img.name,
      ).toEqual({
        status: img.status,
        size: img.size,
        checksum: img.checksum,
        tags: img.tags,
        os_hidden: img.os_hidden,
        visibility: img.visibility,
        os_distro: img.os_distro,
      });
      const members = (await json(`${url}/v2/images/${img.id}/members`)).members as { member_id: string }[];
      expect(members.map((m) => m.member_id).sort(), img.name).toEqual(img.members);
    }
    const withData = fixture.images.filter((img) => img.md5 !== null);
    expect(withData.length).toBeGreaterThan(0);
    await expectImagesIntact(url, new Map(withData.map((img) => [img.id, img.md5 as string])));
    for (const id of fixture.deleted) expect((await fetch(`${url}/v2/images/${id}`)).status).toBe(404);

    // The old release's trash and condemned chunks, collected by this one.
    await collectNow(url);
    await expectImagesIntact(url, new Map(withData.map((img) => [img.id, img.md5 as string])));

    // A new image sharing its first chunks with the largest old one.
    const largest = withData.reduce((a, b) => ((a.size ?? 0) >= (b.size ?? 0) ? a : b));
    const old = Buffer.from(await (await fetch(`${url}/v2/images/${largest.id}/file`)).arrayBuffer());
    const next = Buffer.concat([old, Buffer.from(prng(41, 200_000))]);
    const nextId = await uploadImage(url, "after upgrade", next);
    await expectImagesIntact(url, new Map([[nextId, md5(next)]]));

    // What the old release did not have works on its data.
    const namespaces = await json(`${url}/v2/metadefs/namespaces`);
    expect(namespaces.namespaces).toEqual([]);
  }, 120_000);
});
