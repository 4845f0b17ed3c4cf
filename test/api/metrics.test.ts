/**
 * GET /metrics in Prometheus' text format: requests by route pattern and status, bytes and
 * time of uploads and downloads, what the store holds and its dedup ratio, and collections.
 */
import { describe, expect, it } from "vitest";
import { prng } from "../helpers/data.js";
import { client, sharedServer } from "../helpers/server.js";

const MiB = 1024 * 1024;
const server = sharedServer({ gcIntervalSeconds: 0 });
const api = client(() => server().url);

/** The value of one sample line, e.g. `name{labels}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("metrics", () => {
  it("count requests by route, bytes both ways, the store's holdings and collections", async () => {
    const data = Buffer.from(prng(1, 2 * MiB));
    for (const name of ["a", "b"]) {
      const img = await api.createImage({ name, disk_format: "raw", container_format: "bare" });
      expect((await api.upload(img.id, data)).status).toBe(204);
      const got = await api.get(`/v2/images/${img.id}/file`);
      expect((await got.arrayBuffer()).byteLength).toBe(data.length);
    }
    expect((await api.get("/v2/images/nope")).status).toBe(404);
    const gc = await api.request("POST", "/tessera/v1/gc", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ graceSeconds: 0 }),
    });
    expect(gc.status).toBe(200);
    const res = await api.get("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    expect(
      sample(text, 'tessera_http_requests_total{method="PUT",route="/v2/images/:id/file",status="204"}'),
    ).toBe(2);
    expect(
      sample(text, 'tessera_http_requests_total{method="GET",route="/v2/images/:id",status="404"}'),
    ).toBe(1);
    expect(sample(text, "tessera_upload_bytes_total")).toBe(2 * data.length);
    expect(sample(text, "tessera_download_bytes_total")).toBe(2 * data.length);
    expect(sample(text, 'tessera_store_logical_bytes{store="local"}')).toBe(2 * data.length);
    expect(sample(text, 'tessera_store_dedup_ratio{store="local"}')).toBeCloseTo(2, 1);
    expect(sample(text, "tessera_gc_runs_total")).toBe(1);
    // Between runs no step is under way.
    expect(text).not.toMatch(/^tessera_gc_progress_ratio\{/m);
    expect(text).toContain("tessera_process_resident_memory_bytes");
  });
});
