/**
 * The Swift backend against a real Swift (started once for this file): the object backend
 * conformance suite natively (single PUTs, and static large objects with small segments), token
 * renewal, and the S3 backend's conformance through Swift's s3api middleware.
 */
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { S3Backend } from "../../src/store/s3-backend.js";
import { SwiftBackend } from "../../src/store/swift-backend.js";
import { prng } from "../helpers/data.js";
import { SWIFT_MISSING, type Swift, startSwift } from "../helpers/swift.js";
import { runBackendConformance } from "./backend-conformance.js";

const MiB = 1024 * 1024;

describe.skipIf(SWIFT_MISSING)("Swift", () => {
  let swift: Swift;
  beforeAll(async () => {
    swift = await startSwift();
    // The S3 backend works in an existing bucket, as on any S3.
    const s3 = new S3Client({
      endpoint: swift.s3Endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: swift.user, secretAccessKey: swift.key },
    });
    await s3.send(new CreateBucketCommand({ Bucket: "tessera-s3" }));
    s3.destroy();
  }, 120_000);
  afterAll(async () => {
    await swift?.stop();
  });

  let n = 0;
  const native = (extra: Partial<ConstructorParameters<typeof SwiftBackend>[0]> = {}) =>
    new SwiftBackend({
      authUrl: swift.authUrl,
      user: swift.user,
      key: swift.key,
      container: "tessera",
      prefix: `t${n++}/`,
      ...extra,
    });

  runBackendConformance("Swift, native API (single PUTs)", async () => ({
    backend: native(),
    dispose: async () => {},
  }));
  runBackendConformance("Swift, native API (static large objects of 1 MiB segments)", async () => ({
    backend: native({ segmentSize: MiB }),
    dispose: async () => {},
  }));
  runBackendConformance("S3 backend on Swift's s3api", async () => ({
    backend: new S3Backend({
      endpoint: swift.s3Endpoint,
      region: "us-east-1",
      bucket: "tessera-s3",
      forcePathStyle: true,
      accessKeyId: swift.user,
      secretAccessKey: swift.key,
      prefix: `s${n++}/`,
    }),
    dispose: async () => {},
  }));

  test("listing follows Swift's markers across pages", async () => {
    const b = native({ listPageSize: 3 });
    const names = Array.from({ length: 8 }, (_, i) => `packs/p/${i}`);
    for (const name of names) await b.put(name, [prng(3, 10)]);
    const listed: string[] = [];
    for await (const o of b.list("packs/p/")) listed.push(o.name);
    expect(listed.sort()).toEqual(names);
    await b.close();
  });

  test("an expired or revoked token is replaced once and the request goes through", async () => {
    const b = native();
    await b.put("packs/x/one", [prng(1, 1000)]);
    // Spoil the cached token as Swift's expiry would.
    (b as unknown as { auth: { token: string } }).auth.token = "AUTH_tk-not-a-token";
    expect((await b.get("packs/x/one", 0, 1000)).equals(Buffer.from(prng(1, 1000)))).toBe(true);
    await b.close();
  });

  test("a large object lists and stats as one object of its whole size; deleting it removes its segments", async () => {
    const b = native({ segmentSize: MiB });
    const data = prng(7, 3 * MiB + 5);
    await b.put("packs/l/large", [data]);
    const listed = [];
    for await (const o of b.list("packs/")) listed.push(o);
    expect(listed).toEqual([{ name: "packs/l/large", size: data.length }]);
    expect(await b.stat("packs/l/large")).toEqual({ name: "packs/l/large", size: data.length });
    expect(
      (await b.get("packs/l/large", MiB - 3, 10)).equals(Buffer.from(data.subarray(MiB - 3, MiB + 7))),
    ).toBe(true);
    await b.delete("packs/l/large");
    const segments = new SwiftBackend({
      authUrl: swift.authUrl,
      user: swift.user,
      key: swift.key,
      container: "tessera_segments",
    });
    const left = [];
    for await (const o of segments.list("")) if (o.name.includes("packs/l/large")) left.push(o);
    expect(left).toEqual([]);
  });
});
