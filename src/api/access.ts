/**
 * The bridge from a request's identity to the image service: Access objects that apply the
 * access policy (auth/policy.ts) to the current record inside each transaction.
 */

import type { RequestContext } from "../auth/context.js";
import { metadefAllowed, namespaceVisible } from "../auth/metadef-policy.js";
import { allowed, type ImageAction, visible } from "../auth/policy.js";
import type { RecordsReader } from "../catalog/catalog.js";
import type { ImageRecord } from "../catalog/image-records.js";
import { ForbiddenError } from "../errors.js";
import type { MemberAccess } from "../images/image-members.js";
import type { Access, ImageService } from "../images/images.js";
import type { MetadefAccess } from "../metadefs/metadef-access.js";

/** Glance's words when a policy refuses an action on an image the caller sees. */
export function notAuthorized(action: string): ForbiddenError {
  return new ForbiddenError(`You are not authorized to complete ${action} action.`);
}

export class AccessPolicy {
  constructor(private readonly images: ImageService) {}

  /**
   * Whether `ctx` sees the image: the database's visibility, then get_image. The membership is
   * read through `records` (the unit of work's tx inside one).
   */
  async sees(ctx: RequestContext, rec: ImageRecord, records: RecordsReader): Promise<boolean> {
    const membership = await this.images.membership(rec.id, ctx.projectId, records);
    return visible(ctx, rec, membership) && allowed(ctx, "get_image", rec);
  }

  /** Access for `action`; `refuse` words the 403 (default: Glance's policy message). */
  to(ctx: RequestContext, action: ImageAction, refuse: () => Error = () => notAuthorized(action)): Access {
    return {
      sees: (rec, records) => this.sees(ctx, rec, records),
      check: (rec) => {
        if (!allowed(ctx, action, rec)) throw refuse();
      },
    };
  }

  /** GET /v2/images/{id}/file: download_image, and only admins download deactivated images. */
  download(ctx: RequestContext): Access {
    const base = this.to(ctx, "download_image");
    return {
      sees: base.sees,
      check: (rec) => {
        base.check(rec);
        if (rec.status === "deactivated" && !ctx.isAdmin) {
          throw new ForbiddenError(
            "The requested image has been deactivated. Image data download is forbidden.",
          );
        }
      },
    };
  }

  /** The metadata definitions' access: visibility, then Glance's metadefs policy. */
  metadefs(ctx: RequestContext): MetadefAccess {
    return {
      sees: (ns) => namespaceVisible(ctx, ns),
      check: (action) => {
        if (!metadefAllowed(ctx, action)) throw notAuthorized(action);
      },
      project: ctx.projectId,
    };
  }

  members(ctx: RequestContext, action: ImageAction, refuse?: () => Error): MemberAccess {
    return {
      ...this.to(ctx, action, refuse),
      project: ctx.projectId,
      seesAllMembers: (rec) => ctx.isAdmin || (ctx.projectId !== null && rec.owner === ctx.projectId),
    };
  }
}
