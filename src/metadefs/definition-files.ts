/**
 * Glance's metadata definition files: one namespace per JSON file, as Glance ships them
 * (Debian's glance-common installs them under /usr/share/glance-common/metadefs/) and as
 * `glance-manage db load_metadefs / export_metadefs / unload_metadefs` reads and writes them.
 *
 * Loading reads and checks every file first, then writes them all in one unit of work: a bad
 * file loads nothing. As glance-manage: a namespace already there is skipped, or with `merge`
 * given what it lacks, with `merge` and `preferNew` also updated from the file, with `merge`
 * and `overwrite` replaced whole; loaded records have no updated_at, an owner of "admin" unless
 * the file names one, and resource types they name are created protected. An object's
 * `required` in a file is dropped, as glance-manage drops it.
 */
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Catalog, CatalogTx } from "../catalog/catalog.js";
import type { MetadefNamespaceRecord, MetadefProperty } from "../catalog/metadef-records.js";
import { BadRequestError, ConflictError, TesseraError } from "../errors.js";
import * as contents from "./namespace-contents.js";

export interface LoadOptions {
  merge?: boolean;
  preferNew?: boolean;
  overwrite?: boolean;
}

export interface LoadReport {
  files: number;
  loaded: string[];
  skipped: string[];
  merged: string[];
  replaced: string[];
}

export class DefinitionFileError extends TesseraError {
  constructor(file: string, why: string) {
    super("bad_definition_file", `${file}: ${why}; nothing was loaded`);
  }
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

function optString(file: string, o: Json, key: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new DefinitionFileError(file, `"${key}" is not a string`);
  return v;
}

function namedList(file: string, doc: Json, key: string): Json[] {
  const v = doc[key] ?? [];
  if (!Array.isArray(v) || !v.every((x) => isObject(x) && typeof x.name === "string" && x.name !== "")) {
    throw new DefinitionFileError(file, `"${key}" is not a list of objects with a name`);
  }
  return v as Json[];
}

function propertyMap(file: string, where: string, v: unknown): Record<string, MetadefProperty> {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw new DefinitionFileError(file, `${where} is not an object`);
  for (const [name, def] of Object.entries(v)) {
    if (!isObject(def) || typeof def.type !== "string" || typeof def.title !== "string") {
      throw new DefinitionFileError(file, `property ${name} of ${where} needs a type and a title`);
    }
  }
  return v as Record<string, MetadefProperty>;
}

/** A file's namespace as a record, checked, stamped `at`. */
export function namespaceOfFile(file: string, doc: unknown, at: string): MetadefNamespaceRecord {
  if (!isObject(doc)) throw new DefinitionFileError(file, "not a JSON object");
  const name = doc.namespace;
  if (typeof name !== "string" || name === "" || name.length > 80) {
    throw new DefinitionFileError(file, `"namespace" must be a name of 1 to 80 characters`);
  }
  const visibility = doc.visibility ?? "private";
  if (visibility !== "public" && visibility !== "private") {
    throw new DefinitionFileError(file, `"visibility" must be public or private`);
  }
  const display = optString(file, doc, "display_name");
  const description = optString(file, doc, "description");
  let ns: MetadefNamespaceRecord = {
    namespace: name,
    ...(display === undefined ? {} : { display_name: display }),
    ...(description === undefined ? {} : { description }),
    visibility,
    protected: doc.protected === true,
    owner: optString(file, doc, "owner") ?? "admin",
    created_at: at,
    resource_type_associations: [],
    properties: propertyMap(file, `namespace ${name}`, doc.properties),
    objects: [],
    tags: [],
  };
  try {
    ns = withContents(file, doc, ns, at);
  } catch (e) {
    if (e instanceof ConflictError || e instanceof BadRequestError)
      throw new DefinitionFileError(file, e.message);
    throw e;
  }
  // Loaded rows have no updated_at (Glance's column stays NULL until a change).
  const strip = <T extends { updated_at?: string }>({ updated_at: _u, ...rest }: T) => rest;
  return {
    ...ns,
    resource_type_associations: ns.resource_type_associations.map(strip),
    objects: ns.objects.map(strip),
    tags: ns.tags.map(strip),
  };
}

function withContents(
  file: string,
  doc: Json,
  ns: MetadefNamespaceRecord,
  at: string,
): MetadefNamespaceRecord {
  for (const a of namedList(file, doc, "resource_type_associations")) {
    const prefix = optString(file, a, "prefix");
    const target = optString(file, a, "properties_target");
    ns = contents.addAssociation(ns, { name: a.name as string, prefix, properties_target: target }, at);
  }
  for (const o of namedList(file, doc, "objects")) {
    const description = optString(file, o, "description");
    const properties = propertyMap(file, `object ${o.name}`, o.properties);
    ns = contents.addObject(ns, { name: o.name as string, description, properties }, at);
  }
  return contents.addTags(
    ns,
    namedList(file, doc, "tags").map((t) => t.name as string),
    at,
  );
}

/** The JSON files of `path` (a directory, in name order, or one file). */
async function definitionFiles(path: string): Promise<string[]> {
  if (!(await stat(path)).isDirectory()) return [path];
  const names = (await readdir(path)).filter((n) => n.endsWith(".json")).sort();
  return names.map((n) => join(path, n));
}

/** `prev` given what `file` has that it lacks, or (preferNew) everything `file` says. */
function merged(prev: MetadefNamespaceRecord, file: MetadefNamespaceRecord, preferNew: boolean, at: string) {
  const pick = <T extends { name: string }>(old: T[], add: T[]) => {
    const out = old.map((x) => (preferNew ? (add.find((y) => y.name === x.name) ?? x) : x));
    return [...out, ...add.filter((y) => !old.some((x) => x.name === y.name))];
  };
  const own = preferNew
    ? {
        display_name: file.display_name,
        description: file.description,
        visibility: file.visibility,
        protected: file.protected,
        owner: file.owner,
        updated_at: at,
      }
    : {};
  return {
    ...prev,
    ...own,
    properties: preferNew
      ? { ...prev.properties, ...file.properties }
      : { ...file.properties, ...prev.properties },
    resource_type_associations: pick(prev.resource_type_associations, file.resource_type_associations),
    objects: pick(prev.objects, file.objects),
    tags: pick(prev.tags, file.tags),
  };
}

async function ensureTypes(tx: CatalogTx, ns: MetadefNamespaceRecord, at: string): Promise<void> {
  const known = new Set((await tx.listResourceTypes()).map((t) => t.name));
  for (const a of ns.resource_type_associations) {
    if (!known.has(a.name)) await tx.putResourceType({ name: a.name, protected: true, created_at: at });
    known.add(a.name);
  }
}

export async function loadDefinitions(
  catalog: Catalog,
  path: string,
  opts: LoadOptions = {},
  at = new Date().toISOString(),
): Promise<LoadReport> {
  const files = await definitionFiles(path);
  const loaded: { file: string; ns: MetadefNamespaceRecord }[] = [];
  for (const file of files) {
    let doc: unknown;
    try {
      doc = JSON.parse(await readFile(file, "utf8"));
    } catch (e) {
      throw new DefinitionFileError(file, `not JSON (${(e as Error).message})`);
    }
    const ns = namespaceOfFile(file, doc, at);
    const twice = loaded.find((l) => l.ns.namespace === ns.namespace);
    if (twice) throw new DefinitionFileError(file, `namespace ${ns.namespace} is also in ${twice.file}`);
    loaded.push({ file, ns });
  }
  const report: LoadReport = { files: files.length, loaded: [], skipped: [], merged: [], replaced: [] };
  await catalog.transact(async (tx) => {
    for (const { ns } of loaded) {
      const prev = await tx.getNamespace(ns.namespace);
      let next = ns;
      if (prev && !opts.merge) {
        report.skipped.push(ns.namespace);
        continue;
      }
      if (prev && !opts.overwrite) next = merged(prev, ns, opts.preferNew === true, at);
      await ensureTypes(tx, next, at);
      await tx.putNamespace(next);
      (prev ? (opts.overwrite ? report.replaced : report.merged) : report.loaded).push(ns.namespace);
    }
  });
  return report;
}

/** A namespace as glance-manage exports it: no owner, no timestamps, absent fields null. */
export function fileOfNamespace(ns: MetadefNamespaceRecord): Json {
  return {
    namespace: ns.namespace,
    display_name: ns.display_name ?? null,
    description: ns.description ?? null,
    visibility: ns.visibility,
    protected: ns.protected,
    resource_type_associations: ns.resource_type_associations.map((a) => ({
      name: a.name,
      prefix: a.prefix ?? null,
      properties_target: a.properties_target ?? null,
    })),
    properties: ns.properties,
    objects: ns.objects.map((o) => ({
      name: o.name,
      description: o.description ?? null,
      properties: o.properties,
    })),
    tags: ns.tags.map((t) => ({ name: t.name })),
  };
}

/**
 * Writes every namespace to `dir`, one file each, named after the namespace (glance-manage
 * names them after display names, which need not exist or differ, and overwrites one file
 * with the next when two are alike). Returns the files.
 */
export async function exportDefinitions(catalog: Catalog, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const out: string[] = [];
  const taken = new Set<string>();
  for (const ns of await catalog.records.listNamespaces()) {
    // Readable names (OS::Compute::Libvirt → OS-Compute-Libvirt.json); two namespaces that
    // read alike (X::Y, X:Y) get -2, -3... rather than one file over the other.
    const base = ns.namespace.replace(/[^A-Za-z0-9]+/g, "-");
    let stem = base;
    for (let n = 2; taken.has(stem.toLowerCase()); n++) stem = `${base}-${n}`;
    taken.add(stem.toLowerCase());
    const file = join(dir, `${stem}.json`);
    await writeFile(file, `${JSON.stringify(fileOfNamespace(ns), null, 4)}\n`);
    out.push(file);
  }
  return out;
}

/** Removes every namespace and resource type, as glance-manage unload_metadefs empties its tables. */
export async function unloadDefinitions(
  catalog: Catalog,
): Promise<{ namespaces: number; resourceTypes: number }> {
  return catalog.transact(async (tx) => {
    const namespaces = await tx.listNamespaces();
    const types = await tx.listResourceTypes();
    for (const ns of namespaces) await tx.removeNamespace(ns.namespace);
    for (const t of types) await tx.removeResourceType(t.name);
    return { namespaces: namespaces.length, resourceTypes: types.length };
  });
}
