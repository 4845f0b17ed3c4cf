/**
 * The metadata definitions as Glance Zed shows them (recorded exchanges): absent fields left
 * out, timestamps to the second, a namespace's properties and objects by name and its tags
 * newest first, and with `?resource_type=` every property name given that type's prefix.
 */
import type {
  MetadefAssociation,
  MetadefNamespaceRecord,
  MetadefObject,
  MetadefProperty,
  MetadefResourceTypeRecord,
  MetadefTag,
} from "../catalog/metadef-records.js";
import { glanceTime } from "./image-view.js";

type Json = Record<string, unknown>;

const byName = <T>(entries: [string, T][]) => entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

function stamps(r: { created_at: string; updated_at?: string }): Json {
  return {
    created_at: glanceTime(r.created_at),
    ...(r.updated_at === undefined ? {} : { updated_at: glanceTime(r.updated_at) }),
  };
}

/**
 * Python's str() of a value: Glance's property model types `default` as text, so every
 * default it shows is a string ("5", "True"), whatever type the definition gave it.
 */
function pyStr(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return v ? "True" : "False";
  if (v === null) return "None";
  if (typeof v === "number") return String(v);
  return JSON.stringify(v);
}

export function propertyDefinition(def: MetadefProperty): Json {
  return "default" in def ? { ...def, default: pyStr(def.default) } : { ...def };
}

/** GET .../properties/{name}: the definition under its (unprefixed) name. */
export function propertyView(name: string, def: MetadefProperty): Json {
  const { name: _inner, ...rest } = propertyDefinition(def);
  return { name, ...rest };
}

function properties(map: Record<string, MetadefProperty>, prefix: string, sort: boolean): Json {
  const entries = Object.entries(map);
  return Object.fromEntries(
    (sort ? byName(entries) : entries).map(([k, v]) => [prefix + k, propertyDefinition(v)]),
  );
}

export function propertiesView(ns: MetadefNamespaceRecord): Json {
  return { properties: properties(ns.properties, "", true) };
}

export function objectView(ns: string, o: MetadefObject, prefix = ""): Json {
  return {
    name: o.name,
    required: (o.required ?? []).map((r) => prefix + r),
    ...(o.description === undefined ? {} : { description: o.description }),
    properties: properties(o.properties, prefix, false),
    ...stamps(o),
    self: `/v2/metadefs/namespaces/${ns}/objects/${o.name}`,
    schema: "/v2/schemas/metadefs/object",
  };
}

function sortedObjects(ns: MetadefNamespaceRecord): MetadefObject[] {
  return [...ns.objects].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function objectsView(ns: MetadefNamespaceRecord): Json {
  // Glance's own slip: this one schema link has no leading slash.
  return {
    objects: sortedObjects(ns).map((o) => objectView(ns.namespace, o)),
    schema: "v2/schemas/metadefs/objects",
  };
}

export function tagView(t: MetadefTag): Json {
  return { name: t.name, ...stamps(t) };
}

/** Newest first (the last added first), as Glance lists them by default. */
export function newestTags(tags: readonly MetadefTag[]): MetadefTag[] {
  return [...tags].reverse();
}

export function associationView(a: MetadefAssociation): Json {
  return {
    name: a.name,
    ...(a.prefix === undefined ? {} : { prefix: a.prefix }),
    ...(a.properties_target === undefined ? {} : { properties_target: a.properties_target }),
    ...stamps(a),
  };
}

export function resourceTypeView(t: MetadefResourceTypeRecord): Json {
  return { name: t.name, ...stamps(t) };
}

/**
 * A namespace: in a list or a PUT's answer only its own fields and associations; shown alone
 * (`detail`), also what it holds, property names given `prefix`.
 */
export function namespaceView(ns: MetadefNamespaceRecord, detail: boolean, prefix = ""): Json {
  const out: Json = {
    namespace: ns.namespace,
    ...(ns.display_name === undefined ? {} : { display_name: ns.display_name }),
    ...(ns.description === undefined ? {} : { description: ns.description }),
    visibility: ns.visibility,
    protected: ns.protected,
    ...(ns.owner === null ? {} : { owner: ns.owner }),
    ...stamps(ns),
  };
  if (ns.resource_type_associations.length > 0) {
    out.resource_type_associations = ns.resource_type_associations.map(associationView);
  }
  if (detail) {
    if (Object.keys(ns.properties).length > 0) out.properties = properties(ns.properties, prefix, true);
    if (ns.objects.length > 0)
      out.objects = sortedObjects(ns).map((o) => objectView(ns.namespace, o, prefix));
    if (ns.tags.length > 0) out.tags = newestTags(ns.tags).map((t) => ({ name: t.name }));
  }
  out.self = `/v2/metadefs/namespaces/${ns.namespace}`;
  out.schema = "/v2/schemas/metadefs/namespace";
  return out;
}
