import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { ConfigError } from "../../src/config/server-config.js";
import { BIN } from "../helpers/child-server.js";

describe("the workers setting", () => {
  it("defaults to one worker per CPU, as Glance, and is set by file, environment or --workers", async () => {
    expect(loadConfig(undefined, {}, {}).workers).toBe(availableParallelism());
    const dir = await mkdtemp(join(tmpdir(), "tessera-workers-cfg-"));
    try {
      const file = join(dir, "tessera.json");
      await writeFile(file, JSON.stringify({ workers: 3 }));
      expect(loadConfig(file, {}, {}).workers).toBe(3);
      expect(loadConfig(file, { TESSERA_WORKERS: "5" }, {}).workers).toBe(5);
      expect(loadConfig(file, { TESSERA_WORKERS: "5" }, { workers: "1" }).workers).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses anything but an integer of at least 1, naming the key and where it came from", () => {
    for (const bad of [0, -1, 1.5, "two", true]) {
      expect(() => loadConfig(undefined, {}, { workers: bad }), String(bad)).toThrow(ConfigError);
    }
    expect(() => loadConfig(undefined, { TESSERA_WORKERS: "0" }, {})).toThrow(
      "environment: workers must be an integer of at least 1",
    );
  });

  it("tessera serve --workers 0 is bad usage (exit status 2), before anything is created", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tessera-workers-cfg-"));
    try {
      const r = spawnSync(process.execPath, [BIN, "serve", "--data", join(dir, "data"), "--workers", "0"], {
        encoding: "utf8",
      });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/workers must be an integer of at least 1/);
      expect(await readdir(dir)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
