/**
 * The schemas of the object-valued keys besides `stores` (docs/configuration.md): `formats`,
 * `auth`, `quotas`, `importFilter`, `importPlugins` and `cache`, each with the messages a value that
 * does not fit is refused with (schema-check.ts says how {key}, {at} and {path} read, and
 * what `x-json-text` allows).
 */
import { AUTH_MODES } from "../auth/open-auth.js";
import { RULE_NAMES } from "../formats/inspector.js";
import { QUOTA_NAMES } from "../images/quotas.js";
import { DEFAULT_IMPORT_FILTER } from "../images/web-source.js";

const UNKNOWN = { additionalProperties: 'unknown key "{key}"' };

/** A node every fault of which reads `why`. */
const said = <T extends object>(schema: T, why: string) => ({ ...schema, "x-message": why });

const names = (why: string) =>
  said({ type: "array", items: said({ type: "string", minLength: 1 }, why) }, why);

export const FORMATS_SCHEMA = {
  type: "object",
  properties: {
    inspect: said({ type: "boolean" }, "inspect must be true or false"),
    rules: {
      type: "object",
      properties: Object.fromEntries(
        RULE_NAMES.map((r) => [r, said({ type: "boolean" }, "rule {key} must be true or false")]),
      ),
      additionalProperties: false,
      "x-message": { type: "rules must be an object", additionalProperties: 'unknown rule "{key}"' },
    },
    vmdkCreateTypes: names("vmdkCreateTypes must be a list of names"),
  },
  additionalProperties: false,
  "x-message": UNKNOWN,
};

const KEYSTONE_TYPE = "keystone: {key} must be a {type}";
const KEYSTONE_NEEDED = "keystone: {key} is required";
const keystoneString = said({ type: "string" }, KEYSTONE_TYPE);
const keystoneNeeded = {
  type: "string",
  minLength: 1,
  "x-message": { type: KEYSTONE_TYPE, minLength: KEYSTONE_NEEDED },
};
const keystoneNumber = said({ type: "number" }, KEYSTONE_TYPE);

/** One auth mode: its name and the keys it takes beside it. */
const mode = (name: string, properties: Record<string, unknown>, required: string[], why?: string) => ({
  properties: { mode: { const: name }, ...properties },
  required,
  additionalProperties: false,
  "x-message": {
    additionalProperties: `unknown key "{key}" for mode ${name}`,
    ...(why && { required: why }),
  },
});

const MODES = `mode must be one of ${AUTH_MODES.join(", ")}`;
const TOKENS_FILE = "tokensFile must be a path";
const PROXIES = "trustedProxies must list the proxies' addresses";
const KEYSTONE = "keystone must be an object";

export const AUTH_SCHEMA = {
  type: "object",
  required: ["mode"],
  discriminator: { propertyName: "mode" },
  oneOf: [
    mode("none", {}, []),
    mode(
      "tokens",
      { tokensFile: said({ type: "string", minLength: 1 }, TOKENS_FILE) },
      ["tokensFile"],
      TOKENS_FILE,
    ),
    mode(
      "trusted-headers",
      {
        trustedProxies: said(
          { type: "array", minItems: 1, items: said({ type: "string" }, PROXIES) },
          PROXIES,
        ),
      },
      ["trustedProxies"],
      PROXIES,
    ),
    mode(
      "keystone",
      {
        keystone: {
          type: "object",
          "x-json-text": true,
          properties: {
            url: keystoneNeeded,
            username: keystoneNeeded,
            password: keystoneNeeded,
            projectName: keystoneNeeded,
            userDomain: keystoneString,
            projectDomain: keystoneString,
            cacheSeconds: keystoneNumber,
            cacheEntries: keystoneNumber,
            timeoutMs: keystoneNumber,
          },
          required: ["url", "username", "password", "projectName"],
          additionalProperties: false,
          "x-message": {
            type: KEYSTONE,
            additionalProperties: 'keystone: unknown key "{key}"',
            required: KEYSTONE_NEEDED,
          },
        },
      },
      ["keystone"],
      KEYSTONE,
    ),
  ],
  "x-message": { discriminator: MODES, required: MODES },
};

const limits = {
  type: "object",
  "x-json-text": true,
  properties: Object.fromEntries(
    QUOTA_NAMES.map((n) => [
      n,
      said(
        { type: "integer", minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER },
        "{at}: {key} must be an integer",
      ),
    ]),
  ),
  additionalProperties: false,
  "x-message": {
    type: "{path} must be an object",
    additionalProperties: `{path}: unknown quota "{key}" (one of ${QUOTA_NAMES.join(", ")})`,
  },
};

export const QUOTAS_SCHEMA = {
  type: "object",
  properties: {
    default: limits,
    projects: {
      type: "object",
      "x-json-text": true,
      additionalProperties: limits,
      "x-message": "projects must be an object",
    },
  },
  additionalProperties: false,
  "x-message": UNKNOWN,
};

const PORTS = "must be a list of port numbers";
const NAMES = "must be a list of names";

export const IMPORT_FILTER_SCHEMA = {
  type: "object",
  properties: Object.fromEntries(
    Object.keys(DEFAULT_IMPORT_FILTER).map((k) => {
      const ports = k.endsWith("Ports");
      // An item's fault names the list it is in: {at}, where the list's own names itself: {key}.
      const item = ports
        ? said({ type: "integer", minimum: 1, maximum: 65535 }, `{at} ${PORTS}`)
        : said({ type: "string", minLength: 1 }, `{at} ${NAMES}`);
      return [k, said({ type: "array", items: item }, `{key} ${ports ? PORTS : NAMES}`)];
    }),
  ),
  additionalProperties: false,
  "x-message": UNKNOWN,
};

const CONVERSION = 'imageConversion takes {"outputFormat": "<disk format>"}';
const PROPERTIES = "injectMetadata.properties must map names to strings";
const ROLES = "injectMetadata.ignoreUserRoles must be a list of role names";

export const IMPORT_PLUGINS_SCHEMA = {
  type: "object",
  properties: {
    imageConversion: {
      type: "object",
      "x-json-text": true,
      properties: { outputFormat: said({ type: "string", pattern: "^[a-z0-9]+$" }, CONVERSION) },
      required: ["outputFormat"],
      additionalProperties: false,
      "x-message": {
        type: "imageConversion must be an object",
        required: CONVERSION,
        additionalProperties: CONVERSION,
      },
    },
    injectMetadata: {
      type: "object",
      "x-json-text": true,
      properties: {
        // null stands for the default, as an absent key does.
        properties: {
          type: ["object", "null"],
          "x-json-text": true,
          additionalProperties: said({ type: "string" }, PROPERTIES),
          "x-message": "injectMetadata.properties must be an object",
        },
        ignoreUserRoles: said({ type: ["array", "null"], items: said({ type: "string" }, ROLES) }, ROLES),
      },
      additionalProperties: false,
      "x-message": {
        type: "injectMetadata must be an object",
        additionalProperties: 'injectMetadata: unknown key "{key}"',
      },
    },
  },
  additionalProperties: false,
  "x-message": UNKNOWN,
};

const CACHE_BYTES = "maxBytes must be an integer of at least 1048576 (1 MiB)";

const CATALOG_TYPE = 'type must be "lmdb" or "postgres"';
const CATALOG_URL = "url must be a postgres:// or postgresql:// URL";
const ONLY_POSTGRES = 'url, poolSize and allowMigrate are for a "postgres" catalog';

export const CATALOG_SCHEMA = {
  type: "object",
  properties: {
    type: said({ enum: ["lmdb", "postgres"] }, CATALOG_TYPE),
    url: said({ type: "string", pattern: "^postgres(ql)?://" }, CATALOG_URL),
    poolSize: said(
      { type: "integer", minimum: 1, maximum: 1000 },
      "poolSize must be an integer from 1 to 1000",
    ),
    allowMigrate: said({ type: "boolean" }, "allowMigrate must be true or false"),
  },
  required: ["type"],
  additionalProperties: false,
  "x-message": { ...UNKNOWN, required: CATALOG_TYPE },
  if: { properties: { type: { const: "postgres" } } },
  // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then/else, never awaited
  then: { required: ["url"], "x-message": 'a "postgres" catalog needs its url' },
  else: {
    properties: {
      url: { not: {}, "x-message": ONLY_POSTGRES },
      poolSize: { not: {}, "x-message": ONLY_POSTGRES },
      allowMigrate: { not: {}, "x-message": ONLY_POSTGRES },
    },
  },
};

export const CACHE_SCHEMA = {
  type: "object",
  properties: {
    path: said({ type: "string", minLength: 1 }, "path must be a directory's path"),
    maxBytes: said({ type: "integer", minimum: 1024 * 1024, maximum: Number.MAX_SAFE_INTEGER }, CACHE_BYTES),
  },
  required: ["maxBytes"],
  additionalProperties: false,
  "x-message": { ...UNKNOWN, required: CACHE_BYTES },
};
