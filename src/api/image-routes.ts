/**
 * Glance's images: POST and GET /v2/images, GET, PATCH and DELETE /v2/images/{id}, their tags
 * and actions, and the caller's usage (GET /v2/info/usage). The routes translate HTTP to
 * ImageService calls and records to Glance's JSON; who may do what is the access policy's.
 */
import { Hono } from "hono";
import { listable, mayCreate, mayList, allowed as policyAllows, visibilityAction } from "../auth/policy.js";
import { ForbiddenError } from "../errors.js";
import type { ImageService } from "../images/images.js";
import { type AccessPolicy, notAuthorized } from "./access.js";
import type { Env } from "./env.js";
import { addTag, applyPatch, type ImageLimits, imageFromCreateBody, removeTag } from "./image-changes.js";
import { imageView } from "./image-view.js";
import { PATCH_TYPES, parsePatch } from "./json-patch.js";
import { type ListLimits, listLinks, parseListQuery } from "./list-query.js";
import { mediaType, unsupportedMediaType } from "./media-type.js";
import type { ReadJson } from "./read-json.js";
import { baseUrl } from "./request-origin.js";
import { storeIdsHeader } from "./store-routes.js";

export function imageRoutes(
  images: ImageService,
  policy: AccessPolicy,
  opts: {
    limits: ImageLimits & ListLimits;
    readJson: ReadJson;
    /** The import methods a new image may use (its OpenStack-image-import-methods header). */
    importMethods?: readonly string[];
  },
): Hono<Env> {
  const app = new Hono<Env>();
  const { limits, readJson } = opts;

  app.post("/v2/images", async (c) => {
    const type = mediaType(c);
    if (type !== undefined && type !== "application/json") throw unsupportedMediaType(type);
    const fields = imageFromCreateBody(await readJson(c), limits);
    const ctx = c.get("auth");
    // Glance: an image is its creator's project's unless the body says otherwise (add_image).
    if (!("owner" in fields)) fields.owner = ctx.projectId;
    const owner = fields.owner ?? null;
    if (!mayCreate(ctx, owner)) {
      if (owner !== ctx.projectId)
        throw new ForbiddenError(`You are not permitted to create images owned by '${owner}'.`);
      throw notAuthorized("add_image");
    }
    const visibility = fields.visibility ?? "shared";
    const publish = visibilityAction(visibility);
    if (publish && !policyAllows(ctx, publish, { owner, visibility, status: "queued" })) {
      throw notAuthorized(publish);
    }
    const rec = await images.create(fields);
    c.header("Location", `${baseUrl(c)}/v2/images/${rec.id}`);
    c.header("OpenStack-image-store-ids", storeIdsHeader(images));
    if (opts.importMethods) c.header("OpenStack-image-import-methods", opts.importMethods.join(","));
    return c.json(imageView(rec), 201);
  });

  app.get("/v2/images", async (c) => {
    const ctx = c.get("auth");
    if (!mayList(ctx)) throw notAuthorized("get_images");
    const query = new URL(c.req.url).searchParams;
    const q = parseListQuery(query, limits);
    const page = await images.list({
      ...q,
      match: async (r) => listable(ctx, r, await images.membership(r.id, ctx.projectId), q) && q.match(r),
      sees: (r, records) => policy.sees(ctx, r, records),
    });
    return c.json({
      images: page.map(imageView),
      ...listLinks(query, page, q.limit),
      schema: "/v2/schemas/images",
    });
  });

  app.get("/v2/images/:id", async (c) =>
    c.json(imageView(await images.get(c.req.param("id"), policy.to(c.get("auth"), "get_image")))),
  );

  app.patch("/v2/images/:id", async (c) => {
    const type = mediaType(c);
    if (!type || !PATCH_TYPES.includes(type)) {
      throw unsupportedMediaType(type, { "Accept-Patch": PATCH_TYPES.join(", ") });
    }
    const id = c.req.param("id");
    const ctx = c.get("auth");
    const access = policy.to(ctx, "modify_image");
    await images.get(id, access);
    const ops = parsePatch(await readJson(c), type);
    const rec = await images.update(
      id,
      (r) => {
        for (const op of ops) {
          const [name] = op.path;
          // Glance refuses a non-admin's replace of owner; Tessera refuses every owner change
          // by a non-admin (Glance's add would give the image away).
          if (name === "owner" && !ctx.isAdmin)
            throw new ForbiddenError("Owner can't be updated by non admin.");
          const publish =
            name === "visibility" && op.op !== "remove" ? visibilityAction(String(op.value)) : undefined;
          if (publish && !policyAllows(ctx, publish, r)) throw notAuthorized(publish);
        }
        return applyPatch(r, ops, limits);
      },
      access,
    );
    return c.json(imageView(rec));
  });

  app.delete("/v2/images/:id", async (c) => {
    await images.remove(c.req.param("id"), policy.to(c.get("auth"), "delete_image"));
    return c.body(null, 204);
  });

  app.get("/v2/info/usage", async (c) => c.json({ usage: await images.usage(c.get("auth").projectId) }));

  app.put("/v2/images/:id/tags/:tag", async (c) => {
    await images.update(
      c.req.param("id"),
      (r) => addTag(r, c.req.param("tag"), limits),
      policy.to(c.get("auth"), "modify_image"),
    );
    return c.body(null, 204);
  });

  app.delete("/v2/images/:id/tags/:tag", async (c) => {
    await images.update(
      c.req.param("id"),
      (r) => removeTag(r, c.req.param("tag")),
      policy.to(c.get("auth"), "modify_image"),
    );
    return c.body(null, 204);
  });

  app.post("/v2/images/:id/actions/deactivate", async (c) => {
    await images.deactivate(c.req.param("id"), policy.to(c.get("auth"), "deactivate"));
    return c.body(null, 204);
  });
  app.post("/v2/images/:id/actions/reactivate", async (c) => {
    await images.reactivate(c.req.param("id"), policy.to(c.get("auth"), "reactivate"));
    return c.body(null, 204);
  });

  return app;
}
