/**
 * Changes to what a namespace holds (objects, properties, tags, resource type associations),
 * as plain functions from one record to the next: the service reads the namespace, applies
 * one, and writes the result in the same unit of work. Each refuses what Glance refuses
 * (duplicates 409, unknown names 404), naming things as Glance does.
 */
import type {
  MetadefAssociation,
  MetadefNamespaceRecord,
  MetadefObject,
  MetadefProperty,
  MetadefTag,
} from "../catalog/metadef-records.js";
import { BadRequestError } from "../errors.js";
import { duplicate, missing } from "./metadef-errors.js";

export interface ObjectInput {
  name: string;
  description?: string;
  required?: string[];
  properties?: Record<string, MetadefProperty>;
}

export interface AssociationInput {
  name: string;
  prefix?: string;
  properties_target?: string;
}

type Ns = MetadefNamespaceRecord;

/**
 * Every name a namespace holds is 1 to 80 characters, as Glance's columns are: the schemas
 * check a body's own name but not those nested in a namespace's, nor a definition file's.
 */
export function checkName(name: unknown, what: string): string {
  if (typeof name !== "string" || name.length === 0 || name.length > 80) {
    throw new BadRequestError(`A ${what} name must be a string of 1 to 80 characters.`);
  }
  return name;
}

function checkOptional(v: unknown, what: string): void {
  if (v !== undefined && (typeof v !== "string" || v.length > 80)) {
    throw new BadRequestError(`A ${what} must be a string of at most 80 characters.`);
  }
}

export function newObject(input: ObjectInput, at: string): MetadefObject {
  const { name, description, required, properties } = input;
  checkName(name, "metadata definition object");
  return {
    name,
    ...(description === undefined ? {} : { description }),
    ...(required === undefined ? {} : { required }),
    properties: properties ?? {},
    created_at: at,
    updated_at: at,
  };
}

export function findObject(ns: Ns, name: string): MetadefObject {
  const o = ns.objects.find((x) => x.name === name);
  if (!o) throw missing.object(name);
  return o;
}

export function addObject(ns: Ns, input: ObjectInput, at: string): Ns {
  if (ns.objects.some((o) => o.name === input.name)) throw duplicate.object(input.name, ns.namespace);
  return { ...ns, objects: [...ns.objects, newObject(input, at)] };
}

/** PUT: the object becomes what the body says (fields left out are dropped), renamed if asked. */
export function replaceObject(ns: Ns, name: string, input: ObjectInput, at: string): Ns {
  const old = findObject(ns, name);
  if (input.name !== name && ns.objects.some((o) => o.name === input.name)) {
    throw duplicate.renamedObject(input.name, ns.namespace);
  }
  const next = { ...newObject(input, at), created_at: old.created_at };
  return { ...ns, objects: ns.objects.map((o) => (o === old ? next : o)) };
}

export function removeObject(ns: Ns, name: string): Ns {
  const old = findObject(ns, name);
  return { ...ns, objects: ns.objects.filter((o) => o !== old) };
}

export function findProperty(ns: Ns, name: string): MetadefProperty {
  const p = Object.hasOwn(ns.properties, name) ? ns.properties[name] : undefined;
  if (!p) throw missing.property(name);
  return p;
}

/** `def` as the client wrote it (Glance keeps a POSTed property's own `name` inside it). */
export function addProperty(ns: Ns, name: string, def: MetadefProperty): Ns {
  checkName(name, "metadata definition property");
  if (Object.hasOwn(ns.properties, name)) throw duplicate.property(name, ns.namespace);
  return { ...ns, properties: { ...ns.properties, [name]: def } };
}

export function replaceProperty(ns: Ns, name: string, newName: string, def: MetadefProperty): Ns {
  findProperty(ns, name);
  checkName(newName, "metadata definition property");
  if (newName !== name && Object.hasOwn(ns.properties, newName)) {
    throw duplicate.renamedProperty(newName, ns.namespace);
  }
  // Built from entries: an assignment of "__proto__" would set the prototype, not a key.
  const entries = Object.entries(ns.properties).map(([k, v]): [string, MetadefProperty] =>
    k === name ? [newName, def] : [k, v],
  );
  return { ...ns, properties: Object.fromEntries(entries) };
}

export function removeProperty(ns: Ns, name: string): Ns {
  findProperty(ns, name);
  const { [name]: _gone, ...properties } = ns.properties;
  return { ...ns, properties };
}

export function findTag(ns: Ns, name: string): MetadefTag {
  const t = ns.tags.find((x) => x.name === name);
  if (!t) throw missing.tag(name);
  return t;
}

/** Adds tags (in order); any name already there, or twice in `names`, refuses them all. */
export function addTags(ns: Ns, names: readonly string[], at: string): Ns {
  const seen = new Set(ns.tags.map((t) => t.name));
  for (const name of names) {
    checkName(name, "metadata tag");
    if (seen.has(name)) throw duplicate.tag(name, ns.namespace);
    seen.add(name);
  }
  return { ...ns, tags: [...ns.tags, ...names.map((name) => ({ name, created_at: at, updated_at: at }))] };
}

export function renameTag(ns: Ns, name: string, newName: string, at: string): Ns {
  const old = findTag(ns, name);
  checkName(newName, "metadata tag");
  if (newName !== name && ns.tags.some((t) => t.name === newName)) throw duplicate.tag(newName, ns.namespace);
  const next = { ...old, name: newName, updated_at: at };
  return { ...ns, tags: ns.tags.map((t) => (t === old ? next : t)) };
}

export function removeTag(ns: Ns, name: string): Ns {
  const old = findTag(ns, name);
  return { ...ns, tags: ns.tags.filter((t) => t !== old) };
}

export function newAssociation(input: AssociationInput, at: string): MetadefAssociation {
  const { name, prefix, properties_target } = input;
  checkName(name, "resource type");
  checkOptional(prefix, "resource type association's prefix");
  checkOptional(properties_target, "resource type association's properties_target");
  return {
    name,
    ...(prefix === undefined ? {} : { prefix }),
    ...(properties_target === undefined ? {} : { properties_target }),
    created_at: at,
    updated_at: at,
  };
}

export function addAssociation(ns: Ns, input: AssociationInput, at: string): Ns {
  if (ns.resource_type_associations.some((a) => a.name === input.name)) {
    throw duplicate.association(input.name, ns.namespace);
  }
  return { ...ns, resource_type_associations: [...ns.resource_type_associations, newAssociation(input, at)] };
}

export function removeAssociation(ns: Ns, type: string): Ns {
  const rest = ns.resource_type_associations.filter((a) => a.name !== type);
  if (rest.length === ns.resource_type_associations.length) {
    const e = missing.association(type, ns.namespace);
    e.message = `Failed to find resource type ${type} to delete`;
    throw e;
  }
  return { ...ns, resource_type_associations: rest };
}

/**
 * The prefix a resource type's association gives the namespace's property names (Glance's
 * `?resource_type=`): refuses a type the namespace is not associated with.
 */
export function prefixFor(ns: Ns, type: string): string {
  const a = ns.resource_type_associations.find((x) => x.name === type);
  if (!a) throw missing.association(type, ns.namespace);
  return a.prefix ?? "";
}
