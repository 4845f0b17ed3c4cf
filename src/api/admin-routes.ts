/**
 * Tessera's own operations, beside the Glance API under their own prefix: dedup accounting,
 * and garbage collection on demand (`tessera gc` calls it when a server holds the directory).
 * Admins only: dedup accounting tells which images share data, whoever owns them.
 */
import { Hono } from "hono";
import { BadRequestError } from "../errors.js";
import type { ImageService } from "../images/images.js";
import type { GcSchedule } from "../schedules/gc.js";
import { type Env, requireAdmin } from "./env.js";
import type { ReadJson } from "./read-json.js";

export function adminRoutes(images: ImageService, gc: GcSchedule, readJson: ReadJson): Hono<Env> {
  const app = new Hono<Env>();
  app.use("/tessera/*", async (c, next) => {
    requireAdmin(c, "tessera_admin");
    await next();
  });
  app.get("/tessera/v1/stats", async (c) => c.json(await images.engine.stats()));
  app.get("/tessera/v1/images/:id/stats", async (c) => c.json(await images.imageStats(c.req.param("id"))));

  app.post("/tessera/v1/gc", async (c) => {
    const body = (await readJson(c)) as Record<string, unknown>;
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw new BadRequestError("The body must be a JSON object.");
    }
    const { dryRun, graceSeconds, store } = body;
    if (dryRun !== undefined && typeof dryRun !== "boolean")
      throw new BadRequestError("dryRun must be a boolean.");
    if (
      graceSeconds !== undefined &&
      !(Number.isSafeInteger(graceSeconds) && (graceSeconds as number) >= 0)
    ) {
      throw new BadRequestError("graceSeconds must be a non-negative integer.");
    }
    if (store !== undefined && typeof store !== "string")
      throw new BadRequestError("store must be a string.");
    // A collection of a large store says nothing until it is done: not an idle client.
    c.env.incoming.socket.setTimeout(0);
    return c.json(
      await gc.run({
        dryRun: dryRun as boolean | undefined,
        graceSeconds: graceSeconds as number | undefined,
        store: store as string | undefined,
      }),
    );
  });
  return app;
}
