/**
 * The JSON schemas Glance serves under /v2/schemas: images and members, tasks with imports, and
 * the metadata definitions' under /v2/schemas/metadefs/.
 */
import { Hono } from "hono";
import type { Env } from "./env.js";
import { METADEF_SCHEMAS } from "./metadef-schemas.js";
import { IMAGE_SCHEMA, IMAGES_SCHEMA, MEMBER_SCHEMA, MEMBERS_SCHEMA } from "./schemas.js";
import { TASK_SCHEMA, TASKS_SCHEMA } from "./task-schemas.js";

export function schemaRoutes(withTasks: boolean): Hono<Env> {
  const app = new Hono<Env>();
  const schemas: Record<string, object> = {
    image: IMAGE_SCHEMA,
    images: IMAGES_SCHEMA,
    member: MEMBER_SCHEMA,
    members: MEMBERS_SCHEMA,
    ...(withTasks ? { task: TASK_SCHEMA, tasks: TASKS_SCHEMA } : {}),
    ...Object.fromEntries(Object.entries(METADEF_SCHEMAS).map(([name, s]) => [`metadefs/${name}`, s])),
  };
  // One route per schema, so that each keeps its own name in the request metrics.
  for (const [name, schema] of Object.entries(schemas)) app.get(`/v2/schemas/${name}`, (c) => c.json(schema));
  // Any other name is a schema this server lacks: a GET passes on to a 404, other methods
  // (HEAD included) to the 405 that the pattern being known gives (method-not-allowed.ts).
  app.get("/v2/schemas/:name", (_c, next) => next());
  app.get("/v2/schemas/metadefs/:name", (_c, next) => next());
  return app;
}
