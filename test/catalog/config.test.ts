/** The `catalog` key: LMDB by default, or a PostgreSQL URL; checked by its schema. */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";

const fromEnv = (value: string) => loadConfig(undefined, { TESSERA_CATALOG: value }, {});

describe("the catalog configuration key", () => {
  it("is LMDB by default and takes a PostgreSQL URL and pool size", () => {
    expect(loadConfig(undefined, {}, {}).catalog).toEqual({ type: "lmdb" });
    expect(
      fromEnv('{"type": "postgres", "url": "postgres://tessera@db:5432/tessera", "poolSize": 4}').catalog,
    ).toEqual({
      type: "postgres",
      url: "postgres://tessera@db:5432/tessera",
      poolSize: 4,
    });
  });

  it("refuses an unknown type, a postgres catalog without a URL, a URL on LMDB and unknown keys", () => {
    expect(() => fromEnv('{"type": "mysql"}')).toThrow(
      'environment: catalog: type must be "lmdb" or "postgres"',
    );
    expect(() => fromEnv('{"type": "postgres"}')).toThrow(
      'environment: catalog: a "postgres" catalog needs its url',
    );
    expect(() => fromEnv('{"type": "postgres", "url": "http://db"}')).toThrow(
      "url must be a postgres:// or postgresql:// URL",
    );
    expect(() => fromEnv('{"type": "lmdb", "url": "postgres://db/x"}')).toThrow(
      'url, poolSize and allowMigrate are for a "postgres" catalog',
    );
    expect(() => fromEnv('{"type": "lmdb", "host": "x"}')).toThrow(
      'environment: catalog: unknown key "host"',
    );
  });
});
