/** The `catalog` key: LMDB by default, or a PostgreSQL URL; checked by its schema. */
import { describe, expect, it } from "vitest";
import { configOf } from "../../src/cli/command.js";
import { loadConfig } from "../../src/config/load.js";

const fromEnv = (value: string) => loadConfig(undefined, { TESSERA_CATALOG: value }, {});

/** `fn` with TESSERA_CATALOG as `env` says (configOf reads the process's environment). */
function withEnv<T>(env: { TESSERA_CATALOG?: string }, fn: () => T): T {
  const before = process.env.TESSERA_CATALOG;
  if (env.TESSERA_CATALOG === undefined) delete process.env.TESSERA_CATALOG;
  else process.env.TESSERA_CATALOG = env.TESSERA_CATALOG;
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env.TESSERA_CATALOG;
    else process.env.TESSERA_CATALOG = before;
  }
}

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

  it("takes allowMigrate on a PostgreSQL catalog, and --allow-migrate sets it", () => {
    const url = "postgres://tessera@db:5432/tessera";
    expect(fromEnv(`{"type": "postgres", "url": "${url}", "allowMigrate": true}`).catalog).toEqual({
      type: "postgres",
      url,
      allowMigrate: true,
    });
    expect(() => fromEnv(`{"type": "postgres", "url": "${url}", "allowMigrate": "yes"}`)).toThrow(
      "allowMigrate must be true or false",
    );
    const env = { TESSERA_CATALOG: `{"type": "postgres", "url": "${url}"}` };
    const withFlag = withEnv(env, () => configOf({ "allow-migrate": true }));
    expect(withFlag.catalog).toEqual({ type: "postgres", url, allowMigrate: true });
    expect(() => withEnv({}, () => configOf({ "allow-migrate": true }))).toThrow(
      "--allow-migrate is for a PostgreSQL catalog",
    );
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
