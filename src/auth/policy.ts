/**
 * Glance's default image policies (Zed, with secure RBAC: enforce_secure_rbac and
 * enforce_new_defaults on), as plain functions of who asks, the image and the caller's
 * membership of it. Roles: admin may do anything; member may write its own project's images;
 * reader may only look. docs/security.md has the table; test/auth has a test per row.
 *
 * Two layers, as in Glance: `visible` is the database's filter (an image the caller cannot see
 * does not exist for it: 404, with the same body as an id that was never used), then the
 * policy rules decide, for an image the caller sees, whether the action is allowed (403).
 * Authorization is per image, never per chunk: nothing here looks at data.
 */
import type { RequestContext } from "./context.js";

export type Visibility = "public" | "community" | "shared" | "private";

export interface ImageFacts {
  owner: string | null;
  visibility: Visibility;
  status: string;
}

/** The caller's membership of a shared image, if it has one (any status). */
export interface MembershipFacts {
  status: "pending" | "accepted" | "rejected";
}

/** The policy actions, named as Glance's policy rules. */
export type ImageAction =
  | "get_image"
  | "download_image"
  | "modify_image"
  | "delete_image"
  | "upload_image"
  | "deactivate"
  | "reactivate"
  | "publicize_image"
  | "communitize_image"
  | "delete_image_location"
  | "copy_image"
  | "get_members"
  | "get_member"
  | "add_member"
  | "modify_member"
  | "delete_member";

function isOwner(ctx: RequestContext, image: ImageFacts): boolean {
  return ctx.projectId !== null && image.owner === ctx.projectId;
}

/**
 * Glance's is_image_visible: admins see everything; images without an owner, public and
 * community images are seen by all; otherwise the owner sees it, and a project with a
 * membership (of any status) sees a shared image.
 */
export function visible(ctx: RequestContext, image: ImageFacts, membership?: MembershipFacts): boolean {
  if (ctx.isAdmin) return true;
  if (image.owner === null) return true;
  if (image.visibility === "public" || image.visibility === "community") return true;
  if (isOwner(ctx, image)) return true;
  return image.visibility === "shared" && membership !== undefined;
}

/**
 * Whether a caller that sees the image may perform `action` on it. The rule strings are
 * Glance's (glance/policies/base.py); `member_id` is the caller's project when the image is
 * shared and not its own, as Glance's ImageRepo sets it.
 */
export function allowed(ctx: RequestContext, action: ImageAction, image: ImageFacts): boolean {
  if (ctx.isAdmin) return true;
  const reader = ctx.roles.has("reader");
  const member = ctx.roles.has("member");
  const owner = isOwner(ctx, image);
  const imageMember = image.visibility === "shared" && ctx.projectId !== null && !owner;
  switch (action) {
    // role:reader and (project_id or member_id or community/public/shared visibility)
    case "get_image":
      return reader && (owner || imageMember || image.visibility !== "private");
    // role:member and (the same)
    case "download_image":
      return member && (owner || imageMember || image.visibility !== "private");
    // ADMIN_OR_PROJECT_MEMBER
    case "modify_image":
    case "delete_image":
    case "upload_image":
    case "deactivate":
    case "reactivate":
    case "communitize_image":
    case "add_member":
    case "delete_member":
      return member && owner;
    // ADMIN_OR_PROJECT_READER_OR_SHARED_MEMBER
    case "get_members":
    case "get_member":
      return reader && (owner || imageMember);
    // ADMIN_OR_SHARED_MEMBER: only the member itself answers an invitation
    case "modify_member":
      return member && imageMember;
    // role:admin
    case "publicize_image":
    case "delete_image_location":
    case "copy_image":
      return false;
  }
}

/** get_images: role:admin or role:reader (the listing is then filtered by listable). */
export function mayList(ctx: RequestContext): boolean {
  return ctx.isAdmin || ctx.roles.has("reader");
}

/** add_image: admin, or member creating an image its own project owns. */
export function mayCreate(ctx: RequestContext, owner: string | null): boolean {
  return ctx.isAdmin || (ctx.roles.has("member") && ctx.projectId !== null && owner === ctx.projectId);
}

/** The visibility change (or initial visibility) the caller may set: public and community have their own rules. */
export function visibilityAction(visibility: string): ImageAction | undefined {
  if (visibility === "public") return "publicize_image";
  if (visibility === "community") return "communitize_image";
  return undefined;
}

/**
 * Glance's listing (image_get_all): admins list every image; others list public and community
 * images, their own, and shared images they are a member of with `memberStatus` (default
 * accepted; "all" for any). Without a visibility filter, community images are listed only to
 * their owner. Killed images are listed to no one, whatever the filters (Glance Zed's listing
 * leaves them out, a status=killed filter included; they show by id only).
 */
export function listable(
  ctx: RequestContext,
  image: ImageFacts,
  membership: MembershipFacts | undefined,
  query: { visibility?: string; memberStatus: string },
): boolean {
  if (image.status === "killed") return false;
  const owner = isOwner(ctx, image);
  if (!ctx.isAdmin) {
    const shown =
      image.visibility === "public" ||
      image.visibility === "community" ||
      owner ||
      (image.visibility === "shared" &&
        membership !== undefined &&
        (query.memberStatus === "all" || membership.status === query.memberStatus));
    if (!shown) return false;
  }
  if (query.visibility !== undefined)
    return query.visibility === "all" || image.visibility === query.visibility;
  return image.visibility !== "community" || owner;
}
