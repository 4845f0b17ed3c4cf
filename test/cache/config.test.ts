/** The `cache` key: checked by its schema, from a file or the environment (as JSON text). */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";

const fromEnv = (value: string) => loadConfig(undefined, { TESSERA_CACHE: value }, {});

describe("the cache configuration key", () => {
  it("is absent (no cache) by default and takes a path and a bound", () => {
    expect(loadConfig(undefined, {}, {}).cache).toBeUndefined();
    expect(fromEnv('{"path": "/var/cache/tessera", "maxBytes": 1073741824}').cache).toEqual({
      path: "/var/cache/tessera",
      maxBytes: 1073741824,
    });
    expect(fromEnv('{"maxBytes": 1048576}').cache).toEqual({ maxBytes: 1048576 });
  });

  it("refuses a missing or too small bound and unknown keys, naming the fault", () => {
    expect(() => fromEnv('{"path": "/c"}')).toThrow(
      "environment: cache: maxBytes must be an integer of at least 1048576 (1 MiB)",
    );
    expect(() => fromEnv('{"maxBytes": 1000}')).toThrow("maxBytes must be an integer of at least 1048576");
    expect(() => fromEnv('{"maxBytes": 1048576, "size": 3}')).toThrow(
      'environment: cache: unknown key "size"',
    );
    expect(() => fromEnv('{"maxBytes": 1048576, "path": ""}')).toThrow(
      "environment: cache: path must be a directory's path",
    );
  });
});
