/**
 * The metadata definitions catalog (Glance's metadefs): namespaces of property definitions that
 * dashboards offer for images, flavors and volumes, what they hold, and the resource types they
 * apply to. Every operation reads the namespace, checks the caller's access against it and
 * writes in one unit of work, so a rename, a protected flag or a delete on another node is
 * never half seen.
 */
import type { Catalog, CatalogTx, RecordsReader } from "../catalog/catalog.js";
import type {
  MetadefNamespaceRecord,
  MetadefProperty,
  MetadefVisibility,
} from "../catalog/metadef-records.js";
import type { MetadefAccess, MetadefAction } from "./metadef-access.js";
import { duplicate, missing, protectedFrom } from "./metadef-errors.js";
import * as contents from "./namespace-contents.js";

export interface NamespaceInput {
  namespace: string;
  display_name?: string;
  description?: string;
  visibility?: MetadefVisibility;
  protected?: boolean;
  owner?: string;
  properties?: Record<string, MetadefProperty>;
  objects?: contents.ObjectInput[];
  tags?: { name: string }[];
  resource_type_associations?: contents.AssociationInput[];
}

export const NAMESPACE_SORT_KEYS = [
  "namespace",
  "display_name",
  "description",
  "visibility",
  "protected",
  "owner",
  "created_at",
  "updated_at",
] as const;
export type NamespaceSortKey = (typeof NAMESPACE_SORT_KEYS)[number];

export interface NamespaceQuery {
  visibility?: MetadefVisibility;
  /** Namespaces associated with any of these. */
  resourceTypes?: string[];
  sortKey: NamespaceSortKey;
  sortDir: "asc" | "desc";
  limit: number;
  /** The name of the last namespace of the previous page. */
  marker?: string;
}

type Ns = MetadefNamespaceRecord;

/** Which 404 a missing namespace gets: Glance words its own GET apart from everything under it. */
export type Missing = "namespace" | "parent";

function compare(a: unknown, b: unknown): number {
  // Glance's database sorts NULL first ascending; absent fields are NULL.
  if (a === b) return 0;
  if (a === undefined || a === null) return -1;
  if (b === undefined || b === null) return 1;
  return a < b ? -1 : 1;
}

/**
 * A namespace's own fields as a create or PUT body gives them: what the body leaves out is
 * Glance's default (no display name or description, private, unprotected, the caller's project).
 */
function ownFields(input: NamespaceInput, project: string | null) {
  return {
    namespace: input.namespace,
    ...(input.display_name === undefined ? {} : { display_name: input.display_name }),
    ...(input.description === undefined ? {} : { description: input.description }),
    visibility: input.visibility ?? "private",
    protected: input.protected ?? false,
    owner: input.owner ?? project,
  };
}

export class Metadefs {
  constructor(
    readonly catalog: Catalog,
    private readonly now: () => string = () => new Date().toISOString(),
  ) {}

  private async seen(
    records: RecordsReader,
    access: MetadefAccess,
    name: string,
    style: Missing,
  ): Promise<Ns> {
    const ns = await records.getNamespace(name);
    if (!ns || !access.sees(ns)) throw missing[style](name);
    return ns;
  }

  /** A namespace for reading, after `action`'s check. */
  async read(
    access: MetadefAccess,
    name: string,
    action: MetadefAction,
    style: Missing = "parent",
  ): Promise<Ns> {
    const ns = await this.seen(this.catalog.records, access, name, style);
    access.check(action);
    return ns;
  }

  /**
   * One change to a namespace in one unit of work: `change` returns the next record (written
   * if it differs) and what the caller answers with.
   */
  async edit<T>(
    access: MetadefAccess,
    name: string,
    action: MetadefAction,
    change: (ns: Ns, at: string, tx: CatalogTx) => Promise<{ next: Ns; out: T }> | { next: Ns; out: T },
    style: Missing = "parent",
  ): Promise<T> {
    return this.catalog.transact(async (tx) => {
      const ns = await this.seen(tx, access, name, style);
      access.check(action);
      const { next, out } = await change(ns, this.now(), tx);
      if (next !== ns) {
        if (next.namespace !== ns.namespace) await tx.removeNamespace(ns.namespace);
        await tx.putNamespace(next);
      }
      return out;
    });
  }

  async list(access: MetadefAccess, q: NamespaceQuery): Promise<{ page: Ns[]; more: boolean }> {
    access.check("get_metadef_namespaces");
    const wanted = q.resourceTypes && new Set(q.resourceTypes);
    const all = (await this.catalog.records.listNamespaces()).filter(
      (ns) =>
        access.sees(ns) &&
        (q.visibility === undefined || ns.visibility === q.visibility) &&
        (!wanted || ns.resource_type_associations.some((a) => wanted.has(a.name))),
    );
    const sign = q.sortDir === "asc" ? 1 : -1;
    // Ties broken by name in the same direction: a stable order for markers to page through.
    all.sort((a, b) => sign * (compare(a[q.sortKey], b[q.sortKey]) || compare(a.namespace, b.namespace)));
    let start = 0;
    if (q.marker !== undefined) {
      const at = all.findIndex((ns) => ns.namespace === q.marker);
      if (at < 0) throw missing.namespace(q.marker);
      start = at + 1;
    }
    const page = all.slice(start, start + q.limit);
    return { page, more: start + q.limit < all.length };
  }

  async create(access: MetadefAccess, input: NamespaceInput): Promise<Ns> {
    access.check("add_metadef_namespace");
    contents.checkName(input.namespace, "metadata definition namespace");
    return this.catalog.transact(async (tx) => {
      if (await tx.getNamespace(input.namespace)) throw duplicate.namespace(input.namespace);
      const at = this.now();
      let ns: Ns = {
        ...ownFields(input, access.project),
        created_at: at,
        updated_at: at,
        resource_type_associations: [],
        properties: {},
        objects: [],
        tags: [],
      };
      for (const [name, def] of Object.entries(input.properties ?? {}))
        ns = contents.addProperty(ns, name, def);
      for (const o of input.objects ?? []) ns = contents.addObject(ns, o, at);
      ns = contents.addTags(
        ns,
        (input.tags ?? []).map((t) => t.name),
        at,
      );
      for (const a of input.resource_type_associations ?? []) {
        ns = contents.addAssociation(ns, a, at);
        await this.ensureResourceType(tx, a.name, at);
      }
      await tx.putNamespace(ns);
      return ns;
    });
  }

  /**
   * PUT: the namespace's own fields become the body's (absent ones reset, as Glance does: no
   * display name or description, private, owned by the caller's project); what it holds stays.
   * Returns the record as it was and as it is.
   */
  async update(
    access: MetadefAccess,
    name: string,
    input: NamespaceInput,
  ): Promise<{ before: Ns; after: Ns }> {
    contents.checkName(input.namespace, "metadata definition namespace");
    return this.edit(access, name, "modify_metadef_namespace", async (ns, at, tx) => {
      if (input.namespace !== name && (await tx.getNamespace(input.namespace))) {
        throw duplicate.renamedNamespace(input.namespace);
      }
      const {
        display_name: _d,
        description: _e,
        visibility: _v,
        protected: _p,
        owner: _o,
        updated_at: _u,
        ...kept
      } = ns;
      const next: Ns = {
        ...kept,
        ...ownFields(input, access.project),
        updated_at: at,
      };
      return { next, out: { before: ns, after: next } };
    });
  }

  async remove(access: MetadefAccess, name: string): Promise<void> {
    await this.catalog.transact(async (tx) => {
      const ns = await this.seen(tx, access, name, "parent");
      access.check("delete_metadef_namespace");
      if (ns.protected) throw protectedFrom("namespace", name);
      await tx.removeNamespace(name);
    });
  }

  /**
   * DELETE of one object, property or tag: 404 if it is not there, then 403 if the namespace is
   * protected (Glance's order). A missing namespace is worded as its object routes word it.
   */
  async removeItem(
    access: MetadefAccess,
    name: string,
    what: "object" | "property" | "tag",
    item: string,
  ): Promise<void> {
    const how = {
      object: { action: "delete_metadef_object", remove: contents.removeObject, style: "namespace" },
      property: { action: "remove_metadef_property", remove: contents.removeProperty, style: "parent" },
      tag: { action: "delete_metadef_tag", remove: contents.removeTag, style: "parent" },
    } as const;
    const { action, remove, style } = how[what];
    await this.edit(
      access,
      name,
      action,
      (ns) => {
        const next = remove(ns, item);
        if (ns.protected) throw protectedFrom(what, item);
        return { next, out: undefined };
      },
      style,
    );
  }

  /** DELETE /objects, /properties or /tags: all of them, unless the namespace is protected. */
  async removeAll(
    access: MetadefAccess,
    name: string,
    what: "objects" | "properties" | "tags",
  ): Promise<void> {
    const action = (
      {
        objects: "delete_metadef_object",
        properties: "remove_metadef_property",
        tags: "delete_metadef_tags",
      } as const
    )[what];
    await this.edit(access, name, action, (ns) => {
      if (ns.protected) throw protectedFrom("namespace", name);
      return { next: { ...ns, [what]: what === "properties" ? {} : [] }, out: undefined };
    });
  }

  /** Glance creates a resource type the first time an association names it. */
  async ensureResourceType(tx: CatalogTx, type: string, at: string): Promise<void> {
    const known = await tx.listResourceTypes();
    if (!known.some((t) => t.name === type)) {
      await tx.putResourceType({ name: type, protected: false, created_at: at, updated_at: at });
    }
  }

  async resourceTypes(access: MetadefAccess) {
    access.check("list_metadef_resource_types");
    return this.catalog.records.listResourceTypes();
  }

  /**
   * The prefix `?resource_type=` gives a namespace's property names: an unknown type, or one
   * the namespace is not associated with, is 404.
   */
  async prefixOf(ns: Ns, type: string): Promise<string> {
    const known = await this.catalog.records.listResourceTypes();
    if (!known.some((t) => t.name === type)) throw missing.resourceType(type);
    return contents.prefixFor(ns, type);
  }
}
