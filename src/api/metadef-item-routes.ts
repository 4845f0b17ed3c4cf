/**
 * What a metadata definitions namespace holds: objects, properties and tags, each listed,
 * created, shown, replaced (PUT, renames included) and deleted one at a time or all at once,
 * as Glance Zed does. Every change is one unit of work on the namespace (Metadefs.edit).
 */
import { type Context, Hono } from "hono";
import type { MetadefProperty } from "../catalog/metadef-records.js";
import { BadRequestError } from "../errors.js";
import { missing } from "../metadefs/metadef-errors.js";
import type { Metadefs } from "../metadefs/metadefs.js";
import * as contents from "../metadefs/namespace-contents.js";
import type { AccessPolicy } from "./access.js";
import type { Env } from "./env.js";
import { getOnly, metadefBody } from "./metadef-request.js";
import { METADEF_SCHEMAS } from "./metadef-schemas.js";
import {
  newestTags,
  objectsView,
  objectView,
  propertiesView,
  propertyView,
  tagView,
} from "./metadef-views.js";
import type { ReadJson } from "./read-json.js";
import { schemaCheck } from "./validate.js";

const checkObject = schemaCheck(METADEF_SCHEMAS.object as object, "object");
const checkProperty = schemaCheck(METADEF_SCHEMAS.property as object, "property");
const checkTag = schemaCheck(METADEF_SCHEMAS.tag as object, "tag");
const checkTags = schemaCheck(METADEF_SCHEMAS.tags as object, "tags");

type PropertyInput = MetadefProperty & { name: string };

function pageOfTags(c: Context<Env>, tags: ReturnType<typeof newestTags>) {
  const sortKey = c.req.query("sort_key") ?? "created_at";
  if (sortKey !== "created_at" && sortKey !== "name") {
    throw new BadRequestError(`Invalid sort key: ${sortKey}. It must be one of: name, created_at.`);
  }
  const dir = c.req.query("sort_dir") ?? "desc";
  if (dir !== "asc" && dir !== "desc") throw new BadRequestError(`Invalid sort direction: ${dir}`);
  let list = tags; // newest first: created_at descending
  if (sortKey === "name") list = [...tags].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if ((sortKey === "name") === (dir === "desc")) list = [...list].reverse();
  const marker = c.req.query("marker");
  if (marker !== undefined) {
    const at = list.findIndex((t) => t.name === marker);
    if (at < 0) throw missing.tag(marker);
    list = list.slice(at + 1);
  }
  const limit = c.req.query("limit");
  if (limit !== undefined) {
    if (!/^\d+$/.test(limit)) throw new BadRequestError("limit param must be a positive integer");
    list = list.slice(0, Number(limit));
  }
  return list;
}

export function metadefItemRoutes(metadefs: Metadefs, policy: AccessPolicy, readJson: ReadJson): Hono<Env> {
  const app = new Hono<Env>();
  const access = (c: Context<Env>) => policy.metadefs(c.get("auth"));
  const base = "/v2/metadefs/namespaces/:ns";

  // ---- objects ----
  getOnly(app, `${base}/objects`, async (c) => {
    const ns = await metadefs.read(access(c), c.req.param("ns"), "get_metadef_objects", "namespace");
    return c.json(objectsView(ns));
  });

  app.post(`${base}/objects`, async (c) => {
    const input = await metadefBody<contents.ObjectInput>(c, readJson, checkObject);
    const o = await metadefs.edit(
      access(c),
      c.req.param("ns"),
      "add_metadef_object",
      (ns, at) => {
        const next = contents.addObject(ns, input, at);
        return { next, out: contents.findObject(next, input.name) };
      },
      "namespace",
    );
    return c.json(objectView(c.req.param("ns"), o), 201);
  });

  getOnly(app, `${base}/objects/:name`, async (c) => {
    const ns = await metadefs.read(access(c), c.req.param("ns"), "get_metadef_object", "namespace");
    return c.json(objectView(ns.namespace, contents.findObject(ns, c.req.param("name"))));
  });

  app.put(`${base}/objects/:name`, async (c) => {
    const input = await metadefBody<contents.ObjectInput>(c, readJson, checkObject);
    const o = await metadefs.edit(
      access(c),
      c.req.param("ns"),
      "modify_metadef_object",
      (ns, at) => {
        const next = contents.replaceObject(ns, c.req.param("name"), input, at);
        return { next, out: contents.findObject(next, input.name) };
      },
      "namespace",
    );
    return c.json(objectView(c.req.param("ns"), o));
  });

  // ---- properties ----
  getOnly(app, `${base}/properties`, async (c) => {
    const ns = await metadefs.read(access(c), c.req.param("ns"), "get_metadef_properties");
    return c.json(propertiesView(ns));
  });

  app.post(`${base}/properties`, async (c) => {
    const input = await metadefBody<PropertyInput>(c, readJson, checkProperty);
    await metadefs.edit(access(c), c.req.param("ns"), "add_metadef_property", (ns) => ({
      next: contents.addProperty(ns, input.name, input),
      out: undefined,
    }));
    return c.json(propertyView(input.name, input), 201);
  });

  getOnly(app, `${base}/properties/:name`, async (c) => {
    const ns = await metadefs.read(access(c), c.req.param("ns"), "get_metadef_property");
    let name = c.req.param("name");
    const type = c.req.query("resource_type");
    if (type) {
      // A prefixed name, as a resource of that type carries it: the prefix must be there.
      const prefix = await metadefs.prefixOf(ns, type);
      if (!name.startsWith(prefix)) throw missing.prefix(name, prefix);
      name = name.slice(prefix.length);
    }
    return c.json(propertyView(name, contents.findProperty(ns, name)));
  });

  app.put(`${base}/properties/:name`, async (c) => {
    const input = await metadefBody<PropertyInput>(c, readJson, checkProperty);
    await metadefs.edit(access(c), c.req.param("ns"), "modify_metadef_property", (ns) => ({
      next: contents.replaceProperty(ns, c.req.param("name"), input.name, input),
      out: undefined,
    }));
    return c.json(propertyView(input.name, input));
  });

  // ---- tags ----
  getOnly(app, `${base}/tags`, async (c) => {
    const ns = await metadefs.read(access(c), c.req.param("ns"), "get_metadef_tags");
    return c.json({ tags: pageOfTags(c, newestTags(ns.tags)).map((t) => ({ name: t.name })) });
  });

  // Many at once: replaces every tag, or with X-Openstack-Append: true adds to them.
  app.post(`${base}/tags`, async (c) => {
    const body = await metadefBody<{ tags?: { name: string }[] }>(c, readJson, checkTags);
    if (!Array.isArray(body.tags))
      throw new BadRequestError('The tags to create are not given: {"tags": [...]}');
    const names = body.tags.map((t) => t.name);
    const append = (c.req.header("x-openstack-append") ?? "").toLowerCase() === "true";
    await metadefs.edit(access(c), c.req.param("ns"), "add_metadef_tags", (ns, at) => ({
      // An empty list replaces nothing: Glance keeps the tags (its delete-then-insert has no rows).
      next: names.length === 0 ? ns : contents.addTags(append ? ns : { ...ns, tags: [] }, names, at),
      out: undefined,
    }));
    return c.json({ tags: names.map((name) => ({ name })) }, 201);
  });

  app.post(`${base}/tags/:name`, async (c) => {
    const name = c.req.param("name");
    checkTag({ name });
    const t = await metadefs.edit(access(c), c.req.param("ns"), "add_metadef_tag", (ns, at) => {
      const next = contents.addTags(ns, [name], at);
      return { next, out: contents.findTag(next, name) };
    });
    return c.json(tagView(t), 201);
  });

  getOnly(app, `${base}/tags/:name`, async (c) => {
    const ns = await metadefs.read(access(c), c.req.param("ns"), "get_metadef_tag");
    return c.json(tagView(contents.findTag(ns, c.req.param("name"))));
  });

  app.put(`${base}/tags/:name`, async (c) => {
    const input = await metadefBody<{ name: string }>(c, readJson, checkTag);
    const t = await metadefs.edit(access(c), c.req.param("ns"), "modify_metadef_tag", (ns, at) => {
      const next = contents.renameTag(ns, c.req.param("name"), input.name, at);
      return { next, out: contents.findTag(next, input.name) };
    });
    return c.json(tagView(t));
  });

  for (const [what, one] of [
    ["objects", "object"],
    ["properties", "property"],
    ["tags", "tag"],
  ] as const) {
    app.delete(`${base}/${what}/:name`, async (c) => {
      await metadefs.removeItem(access(c), c.req.param("ns"), one, c.req.param("name"));
      return c.body(null, 204);
    });
  }
  for (const what of ["objects", "properties", "tags"] as const) {
    app.delete(`${base}/${what}`, async (c) => {
      await metadefs.removeAll(access(c), c.req.param("ns"), what);
      return c.body(null, 204);
    });
  }
  return app;
}
