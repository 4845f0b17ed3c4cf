/**
 * The object-valued keys of the configuration (sections): each checked against its schema,
 * then merged over what is already set where the documentation says it is (`formats`,
 * `importFilter`), or filled with its defaults. From the environment a section is JSON text.
 */
import type { AuthConfig } from "../auth/open-auth.js";
import { addressList } from "../auth/trusted-headers.js";
import type { CatalogConfig } from "../catalog/open.js";
import type { FormatPolicy } from "../formats/rules.js";
import type { QuotaConfig } from "../images/quotas.js";
import type { ImportFilter } from "../images/web-source.js";
import type { StoreConfig } from "../store/open-store.js";
import { type Bad, objectValue, sectionCheck } from "./schema-check.js";
import {
  AUTH_SCHEMA,
  CACHE_SCHEMA,
  CATALOG_SCHEMA,
  FORMATS_SCHEMA,
  IMPORT_FILTER_SCHEMA,
  IMPORT_PLUGINS_SCHEMA,
  QUOTAS_SCHEMA,
} from "./section-schemas.js";
import { type CacheConfig, ConfigError, type ImportPlugins, type ServerConfig } from "./server-config.js";
import { STORES_SCHEMA } from "./store-schema.js";

/** The sections by key: each takes the value given and the configuration so far. */
type Section<K extends keyof ServerConfig> = (
  value: unknown,
  current: ServerConfig,
  bad: Bad,
) => ServerConfig[K];

const checkFormats = sectionCheck<Partial<FormatPolicy>>(FORMATS_SCHEMA);
const checkStores = sectionCheck<Record<string, StoreConfig>>(STORES_SCHEMA);
const checkAuth = sectionCheck<AuthConfig>(AUTH_SCHEMA);
const checkQuotas = sectionCheck<QuotaConfig>(QUOTAS_SCHEMA);
const checkCache = sectionCheck<CacheConfig>(CACHE_SCHEMA);
const checkCatalog = sectionCheck<CatalogConfig>(CATALOG_SCHEMA);
const checkImportFilter = sectionCheck<Partial<ImportFilter>>(IMPORT_FILTER_SCHEMA);
const checkImportPlugins = sectionCheck<{
  imageConversion?: { outputFormat: string };
  injectMetadata?: { properties?: Record<string, string> | null; ignoreUserRoles?: string[] | null };
}>(IMPORT_PLUGINS_SCHEMA);

/** `formats`, merged key by key (and rule by rule) over what is set. */
const formats: Section<"formats"> = (value, current, bad) => {
  const v = checkFormats(objectValue(value, bad), bad);
  return { ...current.formats, ...v, rules: { ...current.formats.rules, ...v.rules } };
};

/** `stores` replaces the default stores. */
const stores: Section<"stores"> = (value, _, bad) => checkStores(objectValue(value, bad), bad);

/** `auth`: one of the modes, with the keys of that mode only. */
const auth: Section<"auth"> = (value, _, bad) => {
  const v = checkAuth(objectValue(value, bad), bad);
  if (v.mode === "trusted-headers") {
    try {
      addressList(v.trustedProxies);
    } catch (e) {
      throw bad((e as Error).message);
    }
  }
  return v;
};

const quotas: Section<"quotas"> = (value, _, bad) => checkQuotas(objectValue(value, bad), bad);

/** `importFilter`, merged key by key over what is set; hosts and schemes compare lower case. */
const importFilter: Section<"importFilter"> = (value, current, bad) => {
  const v = checkImportFilter(objectValue(value, bad), bad);
  const out: ImportFilter = { ...current.importFilter };
  for (const [k, list] of Object.entries(v) as [keyof ImportFilter, (string | number)[]][]) {
    (out as unknown as Record<string, unknown>)[k] = k.endsWith("Ports")
      ? list
      : list.map((e) => String(e).toLowerCase());
  }
  return out;
};

const importPlugins: Section<"importPlugins"> = (value, _, bad) => {
  const v = checkImportPlugins(objectValue(value, bad), bad);
  const out: ImportPlugins = {};
  if (v.imageConversion) out.imageConversion = { outputFormat: v.imageConversion.outputFormat };
  if (v.injectMetadata) {
    out.injectMetadata = {
      properties: v.injectMetadata.properties ?? {},
      ignoreUserRoles: v.injectMetadata.ignoreUserRoles ?? ["admin"],
    };
  }
  return out;
};

/** `cache` replaces what is set: a cache is one directory and its bound. */
const cache: Section<"cache"> = (value, _, bad) => checkCache(objectValue(value, bad), bad);

/** `catalog` replaces what is set: one database. */
const catalog: Section<"catalog"> = (value, _, bad) => checkCatalog(objectValue(value, bad), bad);

const SECTIONS: { [K in keyof ServerConfig]?: Section<K> } = {
  formats,
  stores,
  auth,
  quotas,
  importFilter,
  importPlugins,
  cache,
  catalog,
};

/** Whether `key` is a section (an object-valued key with a schema). */
export function isSection(key: keyof ServerConfig): boolean {
  return key in SECTIONS;
}

/**
 * The value of section `key` from `value` as given in `source` (a file's path, "environment"),
 * checked and merged over `current`; throws ConfigError naming the source, key and fault.
 */
export function sectionValue<K extends keyof ServerConfig>(
  key: K,
  value: unknown,
  source: string,
  current: ServerConfig,
): ServerConfig[K] {
  const section = SECTIONS[key] as Section<K>;
  return section(value, current, (why) => new ConfigError(`${source}: ${key}: ${why}`));
}
