/**
 * Glance's interoperable image import: PUT /v2/images/{id}/stage, POST /v2/images/{id}/import
 * (202), GET /v2/info/import, and the tasks that imports run as: GET /v2/tasks, /v2/tasks/{id}
 * (admins: Glance's tasks_api_access) and GET /v2/images/{id}/tasks (whoever sees the image).
 * Their schemas are served by schema-routes.ts.
 */
import { Hono } from "hono";
import type { TaskRecord } from "../catalog/task-records.js";
import { BadRequestError } from "../errors.js";
import { IMPORT_METHODS, type ImportMethod, type ImportRequest, type Imports } from "../images/imports.js";
import type { AccessPolicy } from "./access.js";
import { checkedAgainst, declaredSize } from "./declared-size.js";
import { type Env, requireAdmin } from "./env.js";
import { glanceTime } from "./image-view.js";
import { mediaType, unsupportedMediaType } from "./media-type.js";
import type { ReadJson } from "./read-json.js";
import type { TrackUpload } from "./track-upload.js";

/** Glance shows a task's times in its image's task list as Python's isoformat: no zone, microseconds. */
function pythonTime(iso: string | null): string | null {
  return iso === null ? null : `${iso.slice(0, 23)}000`.replace(/Z$/, "");
}

function taskView(t: TaskRecord): Record<string, unknown> {
  return {
    id: t.id,
    type: t.type,
    status: t.status,
    owner: t.owner,
    input: t.input,
    result: t.result,
    message: t.message,
    image_id: t.image_id,
    request_id: t.request_id,
    user_id: t.user_id,
    expires_at: t.expires_at === null ? null : glanceTime(t.expires_at),
    created_at: glanceTime(t.created_at),
    updated_at: glanceTime(t.updated_at),
    self: `/v2/tasks/${t.id}`,
    schema: "/v2/schemas/task",
  };
}

/** The short form GET /v2/tasks lists. */
function taskSummary(t: TaskRecord): Record<string, unknown> {
  const {
    input: _i,
    result: _r,
    message: _m,
    image_id: _im,
    request_id: _q,
    user_id: _u,
    ...rest
  } = taskView(t);
  return rest;
}

/** GET /v2/images/{id}/tasks shows the records as Glance's database has them. */
function imageTaskView(t: TaskRecord): Record<string, unknown> {
  return {
    id: t.id,
    type: t.type,
    status: t.status,
    owner: t.owner,
    expires_at: pythonTime(t.expires_at),
    created_at: pythonTime(t.created_at),
    updated_at: pythonTime(t.updated_at),
    deleted_at: null,
    deleted: false,
    image_id: t.image_id,
    request_id: t.request_id,
    user_id: t.user_id,
    input: t.input,
    result: t.result,
    message: t.message,
  };
}

/** The import request in a POST /import body, checked as Glance's schema does. */
function importRequest(body: unknown, enabled: ImportMethod[]): ImportRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new BadRequestError("Body expected in request: a JSON object with a method.");
  }
  const doc = body as Record<string, unknown>;
  const method = doc.method as Record<string, unknown> | undefined;
  if (typeof method !== "object" || method === null || typeof method.name !== "string") {
    throw new BadRequestError("Import request requires a 'method' field with a 'name'.");
  }
  const name = method.name;
  if (!(IMPORT_METHODS as readonly string[]).includes(name) || !enabled.includes(name as ImportMethod)) {
    throw new BadRequestError(`Unknown import method name '${name}'.`);
  }
  if (method.uri !== undefined && typeof method.uri !== "string")
    throw new BadRequestError("uri must be a string.");
  const stores = doc.stores;
  if (stores !== undefined && (!Array.isArray(stores) || !stores.every((s) => typeof s === "string"))) {
    throw new BadRequestError("stores must be a list of store names.");
  }
  for (const k of ["all_stores", "all_stores_must_succeed"]) {
    if (doc[k] !== undefined && typeof doc[k] !== "boolean")
      throw new BadRequestError(`${k} must be a boolean.`);
  }
  return {
    method: name as ImportMethod,
    uri: method.uri as string | undefined,
    stores: stores as string[] | undefined,
    allStores: doc.all_stores as boolean | undefined,
    allStoresMustSucceed: doc.all_stores_must_succeed as boolean | undefined,
    body: doc,
  };
}

export function importRoutes(
  imports: Imports,
  policy: AccessPolicy,
  opts: { readJson: ReadJson; track: TrackUpload },
): Hono<Env> {
  const app = new Hono<Env>();
  const images = imports.images;

  app.get("/v2/info/import", (c) =>
    c.json({
      "import-methods": {
        description: "Import methods available.",
        type: "array",
        value: imports.options.methods,
      },
    }),
  );

  app.put("/v2/images/:id/stage", async (c) => {
    const type = mediaType(c);
    if (type !== undefined && type !== "application/octet-stream") throw unsupportedMediaType(type);
    const access = policy.to(c.get("auth"), "modify_image");
    const body = checkedAgainst(c.env.incoming, declaredSize(c.req.header("x-openstack-image-size")));
    await opts.track(c, () => images.stage(c.req.param("id"), body, access));
    return c.body(null, 204);
  });

  app.post("/v2/images/:id/import", async (c) => {
    const req = importRequest(await opts.readJson(c), imports.options.methods);
    const ctx = c.get("auth");
    // Glance: copy-image by its own policy (admins); other methods as changes to the image.
    const access = policy.to(ctx, req.method === "copy-image" ? "copy_image" : "modify_image");
    await imports.start(
      c.req.param("id"),
      req,
      { projectId: ctx.projectId, userId: ctx.userId, roles: ctx.roles, requestId: c.get("requestId") },
      access,
      c.req.header("x-image-meta-store"),
    );
    return c.body(null, 202);
  });

  app.get("/v2/images/:id/tasks", async (c) => {
    const id = c.req.param("id");
    await images.get(id, policy.to(c.get("auth"), "get_image"));
    return c.json({ tasks: (await imports.tasksOf(id)).map(imageTaskView) });
  });

  app.get("/v2/tasks", async (c) => {
    requireAdmin(c, "tasks_api_access");
    const q = new URL(c.req.url).searchParams;
    const limitText = q.get("limit");
    const limit = limitText === null ? 25 : Number(limitText);
    if (!Number.isSafeInteger(limit) || limit < 0)
      throw new BadRequestError("limit param must be an integer");
    const status = q.get("status");
    const type = q.get("type");
    let all = (await imports.tasks()).filter(
      (t) => (!status || t.status === status) && (!type || t.type === type),
    );
    const dir = q.get("sort_dir") ?? "desc";
    if (dir !== "asc" && dir !== "desc") throw new BadRequestError(`Invalid sort direction: ${dir}`);
    if (dir === "asc") all = all.reverse();
    const marker = q.get("marker");
    if (marker !== null) {
      const at = all.findIndex((t) => t.id === marker);
      if (at < 0) throw new BadRequestError(`Invalid marker. Task ${marker} could not be found.`);
      all = all.slice(at + 1);
    }
    const page = all.slice(0, Math.min(limit, 1000));
    const base = new URLSearchParams(q);
    base.delete("marker");
    const qs = base.toString();
    const first = qs ? `/v2/tasks?${qs}` : "/v2/tasks";
    const last = page[page.length - 1];
    return c.json({
      tasks: page.map(taskSummary),
      first,
      schema: "/v2/schemas/tasks",
      ...(page.length === limit && last ? { next: `${first}${qs ? "&" : "?"}marker=${last.id}` } : {}),
    });
  });

  app.get("/v2/tasks/:id", async (c) => {
    requireAdmin(c, "tasks_api_access");
    return c.json(taskView(await imports.task(c.req.param("id"))));
  });

  return app;
}
