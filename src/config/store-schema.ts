/**
 * The schema of `stores` (docs/configuration.md): store names to filesystem, S3 or Swift
 * settings, each type taking only its own keys. StoreConfig in src/store/open-store.ts is the
 * type these describe; a key added there is added here.
 */

const TYPE = "{at}: {key} must be a {type}";
const REQUIRED = "{at}: {key} is required";

const string = { type: "string", "x-message": TYPE };
const number = { type: "number", "x-message": TYPE };
const boolean = { type: "boolean", "x-message": TYPE };
/** A string that must be there and not empty, with the message saying so. */
const needed = (why: string) => ({
  type: "string",
  minLength: 1,
  "x-message": { type: TYPE, minLength: why },
});

/** What every type of store takes. */
const common = {
  description: string,
  compression: {
    type: "string",
    enum: ["zstd", "none"],
    "x-message": { type: TYPE, enum: '{at}: compression must be "zstd" or "none"' },
  },
  readCheck: {
    type: "string",
    enum: ["fast", "full", "off"],
    "x-message": { type: TYPE, enum: '{at}: readCheck must be "fast", "full" or "off"' },
  },
};

/** What S3 and Swift take beyond their backend's own settings. */
const remote = {
  maxPuts: number,
  maxGets: number,
  attempts: number,
  readAheadBytes: number,
  packSize: number,
};

const keysOf = (type: string, properties: Record<string, unknown>, required: string) => ({
  properties: { type: { const: type }, ...common, ...properties },
  additionalProperties: false,
  "x-message": { additionalProperties: '{at}: unknown key "{key}"', required },
});

const filesystem = keysOf("filesystem", { path: string, directWrites: boolean }, REQUIRED);

const s3 = {
  ...keysOf(
    "s3",
    {
      endpoint: string,
      region: needed(REQUIRED),
      bucket: needed(REQUIRED),
      prefix: string,
      forcePathStyle: boolean,
      accessKeyId: string,
      secretAccessKey: string,
      sessionToken: string,
      partSize: number,
      maxSockets: number,
      ...remote,
    },
    REQUIRED,
  ),
  required: ["bucket", "region"],
};

const SWIFT_PLACE = "{at}: authUrl and container are required";
const swift = {
  ...keysOf(
    "swift",
    {
      authUrl: needed(SWIFT_PLACE),
      authVersion: {
        type: "number",
        enum: [1, 3],
        "x-message": { type: TYPE, enum: "{at}: authVersion is 1 (tempauth) or 3 (Keystone)" },
      },
      user: string,
      key: string,
      username: string,
      password: string,
      projectName: string,
      userDomain: string,
      projectDomain: string,
      region: string,
      interface: string,
      storageUrl: string,
      container: needed(SWIFT_PLACE),
      prefix: string,
      segmentSize: number,
      timeoutMs: number,
      ...remote,
    },
    SWIFT_PLACE,
  ),
  required: ["authUrl", "container"],
  // Keystone (v3) signs in with username, password and projectName; tempauth (v1) with user and key.
  if: { properties: { authVersion: { const: 3 } }, required: ["authVersion"] },
  // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then/else, never awaited
  then: credentials("username", "{at}: username, password and projectName are required"),
  else: credentials("user", "{at}: user and key are required"),
};

function credentials(key: string, why: string) {
  return {
    properties: { [key]: { type: "string", minLength: 1, "x-message": why } },
    required: [key],
    "x-message": why,
  };
}

const TYPES = '{path}: type must be "filesystem", "s3" or "swift"';

export const STORES_SCHEMA = {
  type: "object",
  minProperties: 1,
  propertyNames: {
    pattern: "^[A-Za-z0-9_-]{1,64}$",
    "x-message": 'store name "{key}" must be letters, digits, - or _',
  },
  additionalProperties: {
    type: "object",
    required: ["type"],
    discriminator: { propertyName: "type" },
    oneOf: [filesystem, s3, swift],
    "x-message": { type: "{path} must be an object", discriminator: TYPES, required: TYPES },
  },
  "x-message": { minProperties: "at least one store is needed" },
};
