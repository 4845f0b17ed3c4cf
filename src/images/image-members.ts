/**
 * Image sharing (Glance's image members): the owner of a shared image invites projects; each
 * invited project accepts or rejects (or leaves pending). Every operation reads the image,
 * checks and writes in one unit of work. Only shared images have members; a caller that is
 * neither the owner nor an admin sees only its own membership.
 */

import type { RecordsReader } from "../catalog/catalog.js";
import type { ImageRecord } from "../catalog/image-records.js";
import { MEMBER_STATUSES, type Member, type MemberStatus } from "../catalog/member-records.js";
import { BadRequestError, ConflictError, ForbiddenError, NotFoundError, TooLargeError } from "../errors.js";
import { type Access, ImageNotFoundError } from "./image-access.js";
import type { ImageService } from "./images.js";

/** Access to an image's members: as Access, and whose memberships the caller sees. */
export interface MemberAccess extends Access {
  /** Owner or admin: every member; anyone else: only `project`'s own membership. */
  seesAllMembers(rec: ImageRecord): boolean;
  project: string | null;
}

export class MemberNotFoundError extends NotFoundError {
  constructor(imageId: string, memberId: string) {
    super(`member ${memberId}`);
    this.message = `${memberId} not found in the member list of the image ${imageId}.`;
  }
}

function imageNotFound(id: string) {
  return () => new ImageNotFoundError(id, `Image ${id} not found.`);
}

/**
 * The record for a member operation: seen by the caller, shared (else `notShared`). Read
 * through `records` (the unit of work's tx inside one).
 */
async function sharedImage(
  records: RecordsReader,
  id: string,
  access: MemberAccess | undefined,
  notShared: () => Error,
): Promise<ImageRecord> {
  const rec = await records.getImage(id);
  if (!rec || (access && !(await access.sees(rec, records)))) throw imageNotFound(id)();
  if (rec.visibility !== "shared") throw notShared();
  return rec;
}

/** The member `memberId` as the caller may see it. */
async function visibleMember(
  records: RecordsReader,
  rec: ImageRecord,
  memberId: string,
  access: MemberAccess | undefined,
): Promise<Member> {
  const m = await records.getMember(rec.id, memberId);
  const mayLook = !access || access.seesAllMembers(rec) || access.project === memberId;
  if (!m || !mayLook) throw new MemberNotFoundError(rec.id, memberId);
  return m;
}

export class ImageMembers {
  constructor(private readonly images: ImageService) {}

  private get cat() {
    return this.images.engine.catalog;
  }

  async list(id: string, access?: MemberAccess): Promise<Member[]> {
    const notShared = () =>
      new ForbiddenError(`Not allowed to list members for image ${id}: Only shared images have members.`);
    const records = this.cat.records;
    const rec = await sharedImage(records, id, access, notShared);
    access?.check(rec);
    const all = await records.listMembers(id);
    return !access || access.seesAllMembers(rec) ? all : all.filter((m) => m.member_id === access.project);
  }

  /** One membership; anything the caller may not see is not found (Glance answers 404 here). */
  async show(id: string, memberId: string, access?: MemberAccess): Promise<Member> {
    const records = this.cat.records;
    const rec = await sharedImage(
      records,
      id,
      access,
      () => new ImageNotFoundError(id, "Only shared images have members."),
    );
    try {
      access?.check(rec);
    } catch (e) {
      if (e instanceof ForbiddenError) throw new MemberNotFoundError(id, memberId);
      throw e;
    }
    return visibleMember(records, rec, memberId, access);
  }

  add(id: string, memberId: string, access?: MemberAccess): Promise<Member> {
    return this.cat.transact(async (tx) => {
      const rec = await sharedImage(
        tx,
        id,
        access,
        () => new ForbiddenError(`Not allowed to create members for image ${id}.`),
      );
      access?.check(rec);
      if (await tx.getMember(id, memberId)) {
        throw new ConflictError(`Member ${memberId} is duplicated for image ${id}`);
      }
      const max = this.images.memberQuota;
      const attempted = (await tx.countMembers(id)) + 1;
      if (max >= 0 && attempted > max) {
        throw new TooLargeError(
          `Image member limit exceeded for image ${id}: The limit has been exceeded on the number of allowed image members for this image. Attempted: ${attempted}, Maximum: ${max}:`,
        );
      }
      const now = this.images.now();
      const m: Member = {
        image_id: id,
        member_id: memberId,
        status: "pending",
        created_at: now,
        updated_at: now,
      };
      await tx.putMember(m);
      return m;
    });
  }

  update(id: string, memberId: string, status: string, access?: MemberAccess): Promise<Member> {
    return this.cat.transact(async (tx) => {
      const rec = await sharedImage(
        tx,
        id,
        access,
        () => new ForbiddenError(`Not allowed to update members for image ${id}.`),
      );
      const m = await visibleMember(tx, rec, memberId, access);
      access?.check(rec);
      if (!(MEMBER_STATUSES as readonly string[]).includes(status)) {
        throw new BadRequestError('Incorrect request: Status must be "pending", "accepted" or "rejected".');
      }
      const next: Member = { ...m, status: status as MemberStatus, updated_at: this.images.now() };
      await tx.putMember(next);
      return next;
    });
  }

  remove(id: string, memberId: string, access?: MemberAccess): Promise<void> {
    return this.cat.transact(async (tx) => {
      const rec = await sharedImage(
        tx,
        id,
        access,
        () => new ForbiddenError(`Not allowed to delete members for image ${id}.`),
      );
      await visibleMember(tx, rec, memberId, access);
      access?.check(rec);
      await tx.removeMember(id, memberId);
    });
  }
}
