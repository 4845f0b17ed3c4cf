import { createHash } from "node:crypto";
import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { prng } from "../helpers/data.js";
import { client, sharedServer } from "../helpers/server.js";

const server = sharedServer({ osHashAlgo: "sha3_256", osHashNodeName: "sha3-256" });
const api = client(() => server().url);

describe("downloads and hashes", () => {
  it("frees a download's resources as soon as its client disconnects", async () => {
    const data = prng(21, 24 * 1024 * 1024);
    const img = await api.createImage({ name: "abort", disk_format: "raw", container_format: "bare" });
    expect((await api.upload(img.id, data)).status).toBe(204);
    await new Promise<void>((resolve, reject) => {
      const req = request(api.url(`/v2/images/${img.id}/file`), (res) => {
        res.once("data", () => {
          // One piece read, then the client goes away with most of the image unsent.
          expect(server().inflight().downloads).toBe(1);
          req.destroy();
          resolve();
        });
      });
      req.on("error", () => {});
      req.on("close", () => resolve());
      req.once("error", reject);
      req.end();
    });
    const deadline = Date.now() + 5000;
    while (server().inflight().downloads > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    expect(server().inflight().downloads).toBe(0);
    // The server goes on serving, the image whole.
    const body = Buffer.from(await (await api.get(`/v2/images/${img.id}/file`)).arrayBuffer());
    expect(body.equals(Buffer.from(data))).toBe(true);
  });

  it("reports os_hash_algo and os_hash_value with the configured algorithm", async () => {
    const data = prng(22, 300_000);
    const img = await api.createImage({ name: "sha3", disk_format: "raw", container_format: "bare" });
    expect((await api.upload(img.id, data)).status).toBe(204);
    const got = (await (await api.get(`/v2/images/${img.id}`)).json()) as Record<string, unknown>;
    expect(got.os_hash_algo).toBe("sha3_256");
    expect(got.os_hash_value).toBe(createHash("sha3-256").update(data).digest("hex"));
    expect(got.checksum).toBe(createHash("md5").update(data).digest("hex"));
  });
});
