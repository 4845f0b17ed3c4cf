/**
 * Glance's metadata definitions API, namespaces and resource types: GET/POST
 * /v2/metadefs/namespaces, GET/PUT/DELETE /v2/metadefs/namespaces/{ns}, GET
 * /v2/metadefs/resource_types, GET/POST .../{ns}/resource_types and DELETE
 * .../{ns}/resource_types/{type}. Objects, properties and tags are metadef-item-routes.ts.
 * Statuses, shapes and messages are Glance Zed's, recorded against the real one.
 */
import { type Context, Hono } from "hono";
import { METADEF_VISIBILITIES } from "../catalog/metadef-records.js";
import { BadRequestError, ForbiddenError } from "../errors.js";
import {
  type Metadefs,
  NAMESPACE_SORT_KEYS,
  type NamespaceInput,
  type NamespaceQuery,
  type NamespaceSortKey,
} from "../metadefs/metadefs.js";
import * as contents from "../metadefs/namespace-contents.js";
import type { AccessPolicy } from "./access.js";
import type { Env } from "./env.js";
import { getOnly, metadefBody, refuseNulPaths } from "./metadef-request.js";
import { METADEF_SCHEMAS } from "./metadef-schemas.js";
import { associationView, namespaceView, resourceTypeView } from "./metadef-views.js";
import type { ReadJson } from "./read-json.js";
import { baseUrl } from "./request-origin.js";
import { schemaCheck } from "./validate.js";

const checkNamespace = schemaCheck(METADEF_SCHEMAS.namespace as object, "namespace");
const checkAssociation = schemaCheck(METADEF_SCHEMAS.resource_type as object, "resource_type_association");

const DEFAULT_LIMIT = 25;
const MAX_LIMIT = 1000;

function listQuery(url: URL): NamespaceQuery {
  const p = url.searchParams;
  const limitText = p.get("limit");
  let limit = DEFAULT_LIMIT;
  if (limitText !== null) {
    if (!/^-?\d+$/.test(limitText)) throw new BadRequestError("limit param must be an integer");
    limit = Number(limitText);
    if (limit < 0) throw new BadRequestError("limit param must be positive");
    limit = Math.min(limit, MAX_LIMIT);
  }
  const sortKey = p.get("sort_key") ?? "created_at";
  if (!(NAMESPACE_SORT_KEYS as readonly string[]).includes(sortKey)) {
    throw new BadRequestError(
      `Invalid sort key: ${sortKey}. It must be one of: ${NAMESPACE_SORT_KEYS.join(", ")}.`,
    );
  }
  const sortDir = p.get("sort_dir") ?? "desc";
  if (sortDir !== "asc" && sortDir !== "desc") {
    throw new BadRequestError(`Invalid sort direction: ${sortDir}`);
  }
  const visibility = p.get("visibility") ?? undefined;
  if (visibility !== undefined && !(METADEF_VISIBILITIES as readonly string[]).includes(visibility)) {
    throw new BadRequestError(`Invalid visibility value: ${visibility}`);
  }
  const types = p.get("resource_types");
  return {
    sortKey: sortKey as NamespaceSortKey,
    sortDir,
    limit,
    ...(visibility === undefined ? {} : { visibility: visibility as NamespaceQuery["visibility"] }),
    ...(types === null ? {} : { resourceTypes: types.split(",").map((t) => t.trim()) }),
    ...(p.get("marker") === null ? {} : { marker: p.get("marker") as string }),
  };
}

/** `first`: the caller's query without its marker; `next`: that and the page's last name. */
function pageLinks(url: URL, last: string | undefined): { first: string; next?: string } {
  const kept = new URLSearchParams([...url.searchParams].filter(([k]) => k !== "marker"));
  const q = kept.toString();
  const first = `/v2/metadefs/namespaces${q ? `?${q}` : ""}`;
  if (last === undefined) return { first };
  kept.append("marker", last);
  return { first, next: `/v2/metadefs/namespaces?${kept.toString()}` };
}

export function metadefRoutes(metadefs: Metadefs, policy: AccessPolicy, readJson: ReadJson): Hono<Env> {
  const app = new Hono<Env>();
  const access = (c: Context<Env>) => policy.metadefs(c.get("auth"));
  refuseNulPaths(app);

  getOnly(app, "/v2/metadefs/namespaces", async (c) => {
    const url = new URL(c.req.url);
    const q = listQuery(url);
    const { page } = await metadefs.list(access(c), q);
    // As Glance: a full page has a next link, even when nothing follows it.
    const full = page.length > 0 && page.length === q.limit;
    const links = pageLinks(url, full ? page[page.length - 1]?.namespace : undefined);
    return c.json({
      namespaces: page.map((ns) => namespaceView(ns, false)),
      ...(links.next ? { next: links.next } : {}),
      schema: "/v2/schemas/metadefs/namespaces",
      first: links.first,
    });
  });

  app.post("/v2/metadefs/namespaces", async (c) => {
    const input = await metadefBody<NamespaceInput>(c, readJson, checkNamespace);
    const ns = await metadefs.create(access(c), input);
    // Encoded: a header carries no character past Latin-1 (the colons Glance leaves as they are).
    const name = encodeURIComponent(ns.namespace).replace(/%3A/gi, ":");
    const location = `${baseUrl(c)}/v2/metadefs/namespaces/${name}`;
    return c.json(namespaceView(ns, true), 201, { Location: location });
  });

  getOnly(app, "/v2/metadefs/namespaces/:ns", async (c) => {
    const a = access(c);
    const ns = await metadefs.read(a, c.req.param("ns"), "get_metadef_namespace", "namespace");
    const type = c.req.query("resource_type");
    // An unknown or unassociated type shows the names as they are (as Glance does).
    const prefix = type ? (ns.resource_type_associations.find((x) => x.name === type)?.prefix ?? "") : "";
    return c.json(namespaceView(ns, true, prefix));
  });

  app.put("/v2/metadefs/namespaces/:ns", async (c) => {
    const input = await metadefBody<NamespaceInput>(c, readJson, checkNamespace);
    const { before, after } = await metadefs.update(access(c), c.req.param("ns"), input);
    // Glance answers with the record it read, given the new fields, but not the new updated_at.
    const shown =
      before.updated_at === undefined
        ? { ...after, updated_at: undefined }
        : { ...after, updated_at: before.updated_at };
    return c.json(namespaceView(shown, false));
  });

  app.delete("/v2/metadefs/namespaces/:ns", async (c) => {
    await metadefs.remove(access(c), c.req.param("ns"));
    return c.body(null, 204);
  });

  getOnly(app, "/v2/metadefs/resource_types", async (c) => {
    const types = await metadefs.resourceTypes(access(c));
    return c.json({ resource_types: types.map(resourceTypeView) });
  });

  getOnly(app, "/v2/metadefs/namespaces/:ns/resource_types", async (c) => {
    const ns = await metadefs.read(access(c), c.req.param("ns"), "get_metadef_resource_type");
    return c.json({ resource_type_associations: ns.resource_type_associations.map(associationView) });
  });

  app.post("/v2/metadefs/namespaces/:ns/resource_types", async (c) => {
    const input = await metadefBody<contents.AssociationInput>(c, readJson, checkAssociation);
    const created = await metadefs.edit(
      access(c),
      c.req.param("ns"),
      "add_metadef_resource_type_association",
      async (ns, at, tx) => {
        const next = contents.addAssociation(ns, input, at);
        await metadefs.ensureResourceType(tx, input.name, at);
        return { next, out: next.resource_type_associations[next.resource_type_associations.length - 1] };
      },
    );
    return c.json(created ? associationView(created) : {}, 201);
  });

  app.delete("/v2/metadefs/namespaces/:ns/resource_types/:type", async (c) => {
    const type = c.req.param("type");
    await metadefs.edit(access(c), c.req.param("ns"), "remove_metadef_resource_type_association", (ns) => {
      const next = contents.removeAssociation(ns, type);
      if (ns.protected)
        throw new ForbiddenError(
          `Metadata definition resource-type-association ${type} is protected and cannot be deleted.`,
        );
      return { next, out: undefined };
    });
    return c.body(null, 204);
  });

  return app;
}
