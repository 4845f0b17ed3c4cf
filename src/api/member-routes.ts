/**
 * Glance's image members API: GET/POST /v2/images/{id}/members and GET/PUT/DELETE
 * /v2/images/{id}/members/{member}, with Glance's shapes, statuses and messages. Who may do
 * what is the access policy's (get_members, add_member, modify_member, delete_member).
 */
import { Hono } from "hono";
import type { Member } from "../catalog/member-records.js";
import { BadRequestError, ForbiddenError } from "../errors.js";
import type { ImageMembers } from "../images/image-members.js";
import type { AccessPolicy } from "./access.js";
import type { Env } from "./env.js";
import { glanceTime } from "./image-view.js";
import type { ReadJson } from "./read-json.js";

function memberView(m: Member): Record<string, unknown> {
  return {
    created_at: glanceTime(m.created_at),
    image_id: m.image_id,
    member_id: m.member_id,
    schema: "/v2/schemas/member",
    status: m.status,
    updated_at: glanceTime(m.updated_at),
  };
}

function bodyField(body: unknown, field: string, missing: string, shape: string): unknown {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new BadRequestError(shape);
  if (!(field in body)) throw new BadRequestError(missing);
  return (body as Record<string, unknown>)[field];
}

export function memberRoutes(members: ImageMembers, policy: AccessPolicy, readJson: ReadJson): Hono<Env> {
  const app = new Hono<Env>();
  app.get("/v2/images/:id/members", async (c) => {
    const id = c.req.param("id");
    const refuse = () =>
      new ForbiddenError(
        `Not allowed to list members for image ${id}: You are not authorized to complete get_members action.`,
      );
    const list = await members.list(id, policy.members(c.get("auth"), "get_members", refuse));
    return c.json({ members: list.map(memberView), schema: "/v2/schemas/members" });
  });

  app.get("/v2/images/:id/members/:member", async (c) => {
    const m = await members.show(
      c.req.param("id"),
      c.req.param("member"),
      policy.members(c.get("auth"), "get_member"),
    );
    return c.json(memberView(m));
  });

  app.post("/v2/images/:id/members", async (c) => {
    const id = c.req.param("id");
    const memberId = bodyField(
      await readJson(c),
      "member",
      "Member to be added not specified",
      'Expected a member in the form: {"member": "image_id"}',
    );
    if (typeof memberId !== "string" || memberId === "") throw new BadRequestError("Member can't be empty");
    if (memberId.length > 255) throw new BadRequestError("Member ids are at most 255 characters.");
    // As for names, tags and properties (docs/api.md): no database behind Glance keeps a NUL.
    if (memberId.includes("\0")) throw new BadRequestError("Member can't contain NUL characters.");
    const refuse = () => new ForbiddenError(`Not allowed to create members for image ${id}.`);
    const m = await members.add(id, memberId, policy.members(c.get("auth"), "add_member", refuse));
    return c.json(memberView(m));
  });

  app.put("/v2/images/:id/members/:member", async (c) => {
    const id = c.req.param("id");
    const status = bodyField(
      await readJson(c),
      "status",
      "Status not specified",
      'Expected a status in the form: {"status": "status"}',
    );
    const refuse = () => new ForbiddenError(`Not allowed to update members for image ${id}.`);
    const m = await members.update(
      id,
      c.req.param("member"),
      String(status),
      policy.members(c.get("auth"), "modify_member", refuse),
    );
    return c.json(memberView(m));
  });

  app.delete("/v2/images/:id/members/:member", async (c) => {
    const id = c.req.param("id");
    const refuse = () => new ForbiddenError(`Not allowed to delete members for image ${id}.`);
    await members.remove(id, c.req.param("member"), policy.members(c.get("auth"), "delete_member", refuse));
    return c.body(null, 204);
  });
  return app;
}
