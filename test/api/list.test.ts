import { beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_FORMAT_POLICY } from "../../src/formats/rules.js";
import { prng } from "../helpers/data.js";
import { client, sharedServer } from "../helpers/server.js";

// Random bytes are uploaded under every disk_format to give the filters something to find;
// inspection would refuse them (test/formats covers it), so it is off here.
const server = sharedServer({ formats: { ...DEFAULT_FORMAT_POLICY, inspect: false } });
const api = client(() => server().url);

type Img = Record<string, unknown> & {
  id: string;
  name: string | null;
  size: number | null;
  created_at: string;
};

async function list(
  query: string,
): Promise<{ status: number; body: { images: Img[]; first: string; next?: string } }> {
  const res = await api.get(`/v2/images${query}`);
  return { status: res.status, body: (await res.json()) as never };
}

/** Follows `next` links from `query` to the end; returns every image in order. */
async function listAll(query: string): Promise<Img[]> {
  const out: Img[] = [];
  let path: string | undefined = `/v2/images${query}`;
  while (path) {
    const res = await api.get(path);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { images: Img[]; next?: string };
    out.push(...body.images);
    path = body.next;
  }
  return out;
}

const FORMATS = ["raw", "qcow2", "vmdk", null];
const created: Img[] = [];
// Order of creation and of last modification: the server's timestamps strictly increase, at a
// finer grain than the seconds the API shows.
const order = new Map<string, { c: number; u: number }>();
let events = 0;

beforeAll(async () => {
  // 40 images with repeating names, formats and sizes, so that sorts have ties to break.
  for (let i = 0; i < 40; i++) {
    const img = await api.createImage({
      name: i % 7 === 0 ? null : `img-${i % 5}`,
      disk_format: FORMATS[i % 4],
      container_format: FORMATS[i % 4] ? "bare" : null,
      tags: i % 2 === 0 ? ["even", `m${i % 3}`] : ["odd"],
      visibility: i % 10 === 9 ? "community" : i % 3 === 0 ? "private" : "shared",
      os_hidden: i === 11,
      hw_disk_bus: i % 4 === 1 ? "virtio" : "scsi",
    });
    order.set(img.id, { c: ++events, u: events });
    if (FORMATS[i % 4] && i % 3 !== 2) {
      expect((await api.upload(img.id, prng(i, 1000 * (i % 6)))).status).toBe(204);
      (order.get(img.id) as { u: number }).u = ++events;
    }
    created.push((await (await api.get(`/v2/images/${img.id}`)).json()) as Img);
  }
});

/** The default listing's population: no community images, no hidden ones. */
const listed = () => created.filter((i) => i.visibility !== "community" && !i.os_hidden);

function cmp(a: unknown, b: unknown): number {
  const rank = (v: unknown) => (v === null ? 0 : typeof v === "number" ? 1 : 2);
  if (rank(a) !== rank(b)) return rank(a) - rank(b);
  return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0;
}

function expectedOrder(imgs: Img[], keys: [string, "asc" | "desc"][]): string[] {
  const all = [...keys];
  for (const k of ["created_at", "id"]) if (!all.some(([x]) => x === k)) all.push([k, "desc"]);
  return [...imgs]
    .sort((a, b) => {
      const value = (img: Img, k: string) =>
        k === "created_at" ? order.get(img.id)?.c : k === "updated_at" ? order.get(img.id)?.u : img[k];
      for (const [k, d] of all) {
        const c = cmp(value(a, k), value(b, k));
        if (c !== 0) return d === "asc" ? c : -c;
      }
      return 0;
    })
    .map((i) => i.id);
}

describe("listing", () => {
  it("pages through every listed image exactly once, newest first by default, 25 per page", async () => {
    const first = await list("");
    expect(first.body.images).toHaveLength(25);
    expect(first.body.first).toBe("/v2/images");
    expect(first.body.next).toBe(`/v2/images?marker=${first.body.images[24].id}`);
    const all = await listAll("");
    expect(all.map((i) => i.id)).toEqual(expectedOrder(listed(), [["created_at", "desc"]]));
  });

  it("sorts by sort=k:dir,... and by sort_key/sort_dir, ties broken by created_at and id, across pages", async () => {
    const cases: [string, [string, "asc" | "desc"][]][] = [
      ["?sort=name:asc&limit=7", [["name", "asc"]]],
      [
        "?sort=disk_format:desc,size:asc&limit=4",
        [
          ["disk_format", "desc"],
          ["size", "asc"],
        ],
      ],
      ["?sort_key=size&sort_dir=asc&limit=3", [["size", "asc"]]],
      [
        "?sort_key=status&sort_key=name&sort_dir=desc&limit=6",
        [
          ["status", "desc"],
          ["name", "desc"],
        ],
      ],
      ["?sort=id&limit=9", [["id", "desc"]]],
      [
        "?sort=updated_at:asc,name&limit=5",
        [
          ["updated_at", "asc"],
          ["name", "desc"],
        ],
      ],
    ];
    for (const [query, keys] of cases) {
      const got = (await listAll(query)).map((i) => i.id);
      expect(got, query).toEqual(expectedOrder(listed(), keys));
    }
  });

  it("keeps the caller's query, re-encoded, in the first and next links", async () => {
    const { body } = await list("?tag=even&limit=2&sort=name:asc");
    expect(body.first).toBe("/v2/images?tag=even&limit=2&sort=name%3Aasc");
    expect(body.next).toBe(`/v2/images?tag=even&limit=2&sort=name%3Aasc&marker=${body.images[1].id}`);
  });

  it("filters on name, status, visibility, tags, formats, sizes (exact and bounds), hidden, custom properties and in: lists", async () => {
    const cases: [string, (i: Img) => boolean][] = [
      ["?name=img-2", (i) => i.name === "img-2"],
      ["?name=in:img-1,img-3", (i) => i.name === "img-1" || i.name === "img-3"],
      ["?status=queued", (i) => i.status === "queued"],
      ["?visibility=private", (i) => i.visibility === "private"],
      [
        "?tag=even&tag=m1",
        (i) => (i.tags as string[]).includes("even") && (i.tags as string[]).includes("m1"),
      ],
      ["?disk_format=qcow2", (i) => i.disk_format === "qcow2"],
      [
        "?container_format=bare&disk_format=neq:raw",
        (i) => i.container_format === "bare" && i.disk_format !== "raw",
      ],
      ["?size_min=2000&size_max=4000", (i) => i.size !== null && i.size >= 2000 && i.size <= 4000],
      [
        `?size=${created.find((i) => i.size !== null)?.size}`,
        (i) => i.size === created.find((c) => c.size !== null)?.size,
      ],
      ["?hw_disk_bus=virtio", (i) => i.hw_disk_bus === "virtio"],
      ["?protected=false&status=active", (i) => i.status === "active"],
    ];
    for (const [query, pred] of cases) {
      const got = (await listAll(`${query}&limit=1000`)).map((i) => i.id).sort();
      expect(got, query).toEqual(
        listed()
          .filter(pred)
          .map((i) => i.id)
          .sort(),
      );
    }
    const ids = created.slice(0, 3).map((i) => i.id);
    const byId = await listAll(`?id=in:${ids.join(",")}`);
    expect(byId.map((i) => i.id).sort()).toEqual(
      created
        .slice(0, 3)
        .filter((i) => listed().includes(i))
        .map((i) => i.id)
        .sort(),
    );
  });

  it("leaves community and hidden images out by default and shows them when asked", async () => {
    const community = await listAll("?visibility=community");
    expect(community.map((i) => i.id).sort()).toEqual(
      created
        .filter((i) => i.visibility === "community")
        .map((i) => i.id)
        .sort(),
    );
    const hidden = await listAll("?os_hidden=true");
    expect(hidden.map((i) => i.id)).toEqual([created[11].id]);
    const all = await listAll("?visibility=all&limit=1000");
    expect(all).toHaveLength(created.filter((i) => !i.os_hidden).length);
  });

  it("filters on created_at and updated_at with comparison operators", async () => {
    const t = created[20].created_at;
    const gt = await listAll(`?created_at=gt:${t}`);
    expect(gt.every((i) => i.created_at > t)).toBe(true);
    const lte = await listAll(`?created_at=lte:${t}`);
    expect(gt.length + lte.length).toBe(listed().length);
    expect((await listAll("?created_at=gte:2000-01-01T00:00:00Z")).length).toBe(listed().length);
    expect(await listAll("?updated_at=lt:2000-01-01T00:00:00Z")).toEqual([]);
  });

  it("answers every invalid parameter with 400 and Glance's message", async () => {
    const cases: [string, string][] = [
      [
        "?sort_key=bogus",
        "Invalid sort key: bogus. It must be one of the following: name, status, container_format, disk_format, size, id, created_at, updated_at.",
      ],
      ["?sort_dir=sideways", "Invalid sort direction: sideways"],
      ["?sort=name:up", "Invalid sort direction: up"],
      ["?sort=name&sort_key=size", "cannot be used together"],
      ["?limit=-1", "limit param must be positive"],
      ["?limit=ten", "limit param must be an integer"],
      ["?visibility=bogus", "Invalid visibility value: bogus"],
      [
        "?marker=00000000-0000-0000-0000-000000000000",
        "No image found with ID 00000000-0000-0000-0000-000000000000",
      ],
      ["?size_min=big", ""],
      ["?size=big", "size param must be an integer"],
      ["?changes-since=2020-01-01T00:00:00Z", "filter is no longer available on v2."],
      ["?created_at=gt:yesterday", ""],
      ["?created_at=between:1", ""],
      ["?name=foo:bar", ""],
      ["?protected=maybe", ""],
      ["?member_status=bogus", ""],
    ];
    for (const [query, msg] of cases) {
      const res = await api.get(`/v2/images${query}`);
      expect(res.status, query).toBe(400);
      expect(await res.text(), query).toContain(msg);
    }
  });

  it("answers limit=0 with an empty page and no next link", async () => {
    const { status, body } = await list("?limit=0&visibility=all");
    expect(status).toBe(200);
    expect(body.images).toEqual([]);
    expect(body.next).toBeUndefined();
  });

  it("caps limit at the configured maximum", async () => {
    const { body } = await list("?limit=100000&visibility=all");
    expect(body.images.length).toBe(created.filter((i) => !i.os_hidden).length);
  });
});
