/**
 * web-download's defences against server-side request forgery, without a packet ever leaving
 * this machine: hostile URIs against a real server whose only allowed source is a web server
 * on 127.0.0.1 (loopback in its other spellings, other ports, other schemes, redirects,
 * endless and silent bodies), and the address rules as unit tests with the DNS step replaced,
 * so that the private, link-local and metadata ranges are checked without connecting anywhere.
 */
import type { LookupAddress } from "node:dns";
import { rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  checkUri,
  DEFAULT_IMPORT_FILTER,
  guardedLookup,
  type ImportFilter,
  isPublicAddress,
  UriFilteredError,
  webSource,
} from "../../src/images/web-source.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { waitFor } from "../helpers/wait.js";
import { onlyFrom, startWebServer, type WebServer } from "../helpers/web.js";

describe("the address rules", () => {
  test("private, loopback, link-local (metadata), shared, documentation, multicast and reserved ranges are not public", () => {
    for (const a of [
      "10.0.0.1",
      "10.255.255.255",
      "172.16.0.1",
      "172.31.255.254",
      "192.168.1.1",
      "169.254.169.254",
      "127.0.0.1",
      "127.255.0.9",
      "0.0.0.0",
      "100.64.0.1",
      "192.0.2.10",
      "198.51.100.7",
      "203.0.113.9",
      "198.18.0.1",
      "224.0.0.1",
      "240.0.0.1",
      "255.255.255.255",
      "::",
      "::1",
      "fc00::1",
      "fd12:3456::1",
      "fe80::1",
      "ff02::1",
      "2001:db8::1",
      "::ffff:10.0.0.1",
      "::ffff:169.254.169.254",
      "64:ff9b::a9fe:a9fe",
      "fd00:ec2::254",
    ]) {
      expect(isPublicAddress(a), a).toBe(false);
    }
  });

  test("public addresses pass", () => {
    for (const a of [
      "93.184.216.34",
      "8.8.8.8",
      "172.32.0.1",
      "192.169.0.1",
      "2606:4700::1111",
      "2a00:1450::1",
    ]) {
      expect(isPublicAddress(a), a).toBe(true);
    }
    expect(isPublicAddress("not-an-address")).toBe(false);
  });

  /** Runs the lookup a connection would use, with `answers` as what DNS returned. */
  function lookup(answers: LookupAddress[], explicit = false, all = true): Promise<unknown> {
    const resolve = async () => answers;
    return new Promise((ok, fail) => {
      guardedLookup(explicit, resolve)("mirror.example", { all }, (err, address, family) =>
        err ? fail(err) : ok(all ? address : { address, family }),
      );
    });
  }

  test("a name that resolves to any non-public address is refused at the connection's own lookup", async () => {
    for (const address of ["169.254.169.254", "10.1.2.3", "127.0.0.1", "::1", "fd00::5"]) {
      const family = address.includes(":") ? 6 : 4;
      await expect(lookup([{ address, family }])).rejects.toThrow(/not a public address/);
      // One bad answer among good ones is enough to refuse (no picking the good one to check).
      await expect(
        lookup([
          { address: "93.184.216.34", family: 4 },
          { address, family },
        ]),
      ).rejects.toThrow(/not a public address/);
    }
  });

  test("the connection gets exactly the checked addresses; an explicitly allowed host may be private", async () => {
    const public4 = [{ address: "93.184.216.34", family: 4 }];
    expect(await lookup(public4)).toEqual(public4);
    expect(await lookup(public4, false, false)).toEqual({ address: "93.184.216.34", family: 4 });
    expect(await lookup([{ address: "10.0.0.7", family: 4 }], true)).toEqual([
      { address: "10.0.0.7", family: 4 },
    ]);
    await expect(lookup([])).rejects.toThrow(/does not resolve/);
  });

  test("URIs: Glance's scheme, host and port lists, encoded addresses and private literals", () => {
    const f = DEFAULT_IMPORT_FILTER;
    expect(checkUri("http://images.example.org/x.img", f).host).toBe("images.example.org");
    expect(checkUri("https://images.example.org:443/x.img", f).host).toBe("images.example.org");
    const refused = [
      "ftp://images.example.org/x",
      "file:///etc/passwd",
      "gopher://images.example.org/",
      "http://images.example.org:8080/x",
      "http://10.0.0.1/x",
      "http://169.254.169.254/latest/meta-data/",
      "http://[fd00::1]/x",
      "http://[::ffff:169.254.169.254]/x",
      "http://2130706433/x",
      "http://0x7f.1/x",
      "http://0177.0.0.1/x",
      "http://127.1/x",
      "http://0/x",
      "not a uri",
      "",
    ];
    for (const uri of refused) expect(() => checkUri(uri, f), uri).toThrow(UriFilteredError);
    const denyHost: ImportFilter = { ...f, disallowedHosts: ["images.example.org"] };
    expect(() => checkUri("http://images.example.org/x", denyHost)).toThrow(UriFilteredError);
    // An allow list wins over its deny list, as in Glance.
    const both: ImportFilter = { ...f, allowedHosts: ["a.example"], disallowedHosts: ["a.example"] };
    expect(checkUri("http://a.example/x", both).explicit).toBe(true);
    const anyPort: ImportFilter = { ...f, allowedPorts: [], disallowedPorts: [22] };
    expect(checkUri("http://images.example.org:8080/x", anyPort).host).toBe("images.example.org");
    expect(() => checkUri("http://images.example.org:22/x", anyPort)).toThrow(UriFilteredError);
  });
});

describe("hostile URIs against a server whose only allowed source is a web server on 127.0.0.1", () => {
  let web: WebServer;
  let other: WebServer;
  let s: TestServer;
  beforeAll(async () => {
    web = await startWebServer();
    other = await startWebServer();
    s = await startTestServer({
      importFilter: onlyFrom(web),
      imageSizeCap: 4 * 1024 * 1024,
      webDownloadIdleTimeoutSeconds: 1,
    });
  });
  afterAll(async () => {
    await s?.close();
    if (s) await rm(s.dataDir, { recursive: true, force: true });
    await web?.close();
    await other?.close();
  });

  const post = async (id: string, uri: string) =>
    fetch(`${s.url}/v2/images/${id}/import`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ method: { name: "web-download", uri } }),
    });
  const newImage = async () =>
    (
      (await (
        await fetch(`${s.url}/v2/images`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ name: "h", disk_format: "raw", container_format: "bare" }),
        })
      ).json()) as { id: string }
    ).id;
  const settle = async (id: string) => {
    const img = await waitFor(`image ${id} to settle`, async () => {
      const img = (await (await fetch(`${s.url}/v2/images/${id}`)).json()) as Record<string, unknown>;
      return img.status !== "importing" && !("os_glance_import_task" in img) && img;
    });
    const tasks = (await (await fetch(`${s.url}/v2/images/${id}/tasks`)).json()) as {
      tasks: { status: string; message: string }[];
    };
    return { img, task: tasks.tasks[0] };
  };

  test("loopback in all its other spellings, other ports and schemes: 400, and no request reaches anything", async () => {
    const id = await newImage();
    const p = web.port;
    for (const uri of [
      `http://127.0.0.2:${p}/x`,
      `http://0.0.0.0:${p}/x`,
      `http://[::1]:${p}/x`,
      `http://localhost:${p}/x`,
      `http://2130706433:${p}/x`,
      `http://0x7f.1:${p}/x`,
      `http://127.1:${p}/x`,
      `http://127.0.0.1:${other.port}/x`,
      `gopher://127.0.0.1:${p}/x`,
      `ftp://127.0.0.1:${p}/x`,
      `file:///etc/passwd`,
      `data:text/plain,hello`,
    ]) {
      const res = await post(id, uri);
      expect(res.status, uri).toBe(400);
    }
    expect(web.hits).toEqual([]);
    expect(other.hits).toEqual([]);
  });

  test("a redirect from the allowed server to another loopback port is not followed: the task fails", async () => {
    web.routes.set("/hop", { kind: "redirect", to: `http://127.0.0.1:${other.port}/secret` });
    web.routes.set("/hop2", { kind: "redirect", to: "http://169.254.169.254/latest/meta-data/" });
    for (const path of ["/hop", "/hop2"]) {
      const id = await newImage();
      expect((await post(id, `${web.url}${path}`)).status).toBe(202);
      const { img, task } = await settle(id);
      expect(img.status).toBe("queued");
      expect(task?.status).toBe("failure");
      expect(task?.message).toMatch(/does not pass filtering/);
    }
    expect(other.hits).toEqual([]);
  });

  test("an endless response is cut at the size cap; a silent one at the idle timeout; neither leaves data", async () => {
    web.routes.set("/endless", { kind: "endless" });
    web.routes.set("/silent", { kind: "stall", first: Buffer.alloc(10) });
    for (const [path, why] of [
      ["/endless", /limit of 4194304 bytes/],
      ["/silent", /no data from/],
    ] as const) {
      const id = await newImage();
      expect((await post(id, `${web.url}${path}`)).status).toBe(202);
      const { img, task } = await settle(id);
      expect(img).toMatchObject({ status: "queued", size: null });
      expect(task?.message).toMatch(why);
    }
  });

  test("too many redirects fail the task", async () => {
    for (let i = 0; i < 8; i++)
      web.routes.set(`/loop${i}`, { kind: "redirect", to: `${web.url}/loop${i + 1}` });
    const id = await newImage();
    await post(id, `${web.url}/loop0`);
    const { task } = await settle(id);
    expect(task?.message).toMatch(/more than 5 redirects/);
  });

  test("the web source alone follows an allowed redirect and streams the bytes", async () => {
    web.routes.set("/real", { kind: "bytes", data: Buffer.from("the image") });
    web.routes.set("/moved", { kind: "redirect", to: "/real" });
    const filter = { ...DEFAULT_IMPORT_FILTER, allowedHosts: ["127.0.0.1"], allowedPorts: [web.port] };
    const parts: Buffer[] = [];
    for await (const p of webSource(`${web.url}/moved`, { filter, idleTimeoutMs: 1000, maxRedirects: 2 })) {
      parts.push(p);
    }
    expect(Buffer.concat(parts).toString()).toBe("the image");
  });
});
