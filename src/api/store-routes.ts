/**
 * Glance's multi-store API: the list of stores (GET /v2/info/stores, and /detail), and
 * removing an image's data from one store (DELETE /v2/stores/{store}/{image}). Tessera always
 * runs Glance's multi-store mode: even one store has a name (Glance's enabled_backends).
 */
import { Hono } from "hono";
import type { StoreDescription } from "../engine/stores.js";
import { ConflictError } from "../errors.js";
import type { ImageService } from "../images/images.js";
import { type AccessPolicy, notAuthorized } from "./access.js";
import { type Env, requireAdmin } from "./env.js";

/** glance_store's names for the kinds of store. */
const GLANCE_TYPES = { filesystem: "file", s3: "s3", swift: "swift" } as const;

/** Glance writes these flags as the string "true", and leaves them out when false. */
function storeView(s: StoreDescription): Record<string, unknown> {
  return {
    id: s.name,
    ...(s.description !== undefined ? { description: s.description } : {}),
    ...(s.isDefault ? { default: "true" } : {}),
  };
}

function storeDetailView(s: StoreDescription): Record<string, unknown> {
  const properties: Record<string, unknown> =
    s.type === "filesystem" ? { data_dir: `${s.location.path}/` } : { ...s.location };
  properties.compression = s.compression ? "zstd" : "none";
  properties.pack_size = s.packSize;
  return { ...storeView(s), type: GLANCE_TYPES[s.type], properties };
}

export function storeRoutes(images: ImageService, policy: AccessPolicy): Hono<Env> {
  const app = new Hono<Env>();
  app.get("/v2/info/stores", (c) => c.json({ stores: images.stores().map(storeView) }));

  // Glance's policy (stores_info_detail) shows the detail to admins only.
  app.get("/v2/info/stores/detail", (c) => {
    requireAdmin(c, "stores_info_detail");
    return c.json({ stores: images.stores().map(storeDetailView) });
  });

  app.delete("/v2/stores/:store/:id", async (c) => {
    const store = c.req.param("store");
    // Glance answers an unknown store here with 409, not the 400 an upload gets.
    if (!images.stores().some((s) => s.name === store)) {
      throw new ConflictError(`The selected store ${store} is not available on this node.`);
    }
    // Glance's delete_image_location: admins only.
    const access = policy.to(c.get("auth"), "delete_image_location", () =>
      notAuthorized("delete_image_location"),
    );
    await images.removeFromStore(c.req.param("id"), store, access);
    return c.body(null, 204);
  });
  return app;
}

/** The header Glance's image creation answers with in multi-store mode. */
export function storeIdsHeader(images: ImageService): string {
  return images
    .stores()
    .map((s) => s.name)
    .join(",");
}
