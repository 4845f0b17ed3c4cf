/**
 * The server's log lines on standard output, as a log shipper reads them: JSON with the time in
 * ISO 8601 (UTC) and the level by name, from a single process and from a primary and its workers.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { call, type LogLine, startCluster } from "../helpers/cluster-server.js";
import { waitFor } from "../helpers/wait.js";

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"];

let dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  dirs = [];
});

function expectShipperReadable(logs: LogLine[]): void {
  for (const line of logs) {
    expect(line.time, JSON.stringify(line)).toMatch(ISO_UTC);
    // Within a minute of now: a real clock reading, not a number turned into a string.
    expect(Math.abs(Date.parse(line.time as string) - Date.now())).toBeLessThan(60_000);
    expect(LEVELS, JSON.stringify(line)).toContain(line.level);
  }
}

describe("server log lines", () => {
  for (const workers of [1, 2]) {
    it(`carry ISO 8601 times and levels by name (workers: ${workers})`, async () => {
      const dir = await mkdtemp(join(tmpdir(), "tessera-logs-"));
      dirs.push(dir);
      const s = await startCluster(join(dir, "data"), workers, { args: ["--no-fsync"] });
      expect((await call(`${s.url}/v2/images`)).status).toBe(200);
      await waitFor("the request's log line", () => s.logs.some((l) => l.path === "/v2/images"));
      s.child.kill("SIGTERM");
      expect(await s.exited).toBe(0);
      await waitFor("the last line", () => s.logs.some((l) => l.msg === "stopped"));
      const request = s.logs.find((l) => l.path === "/v2/images");
      expect(request?.level).toBe("info");
      if (workers > 1) expect(s.logs.some((l) => l.msg === "worker listening")).toBe(true);
      expectShipperReadable(s.logs);
    });
  }
});
