/**
 * Image members: the projects an image is shared with, and whether each has accepted it
 * (Glance's image sharing). Keyed [image id, project] so that an image's members are one range
 * and a membership one lookup. Writers call these inside a catalog transaction.
 */
import type { Catalog } from "./catalog.js";

export const MEMBER_STATUSES = ["pending", "accepted", "rejected"] as const;
export type MemberStatus = (typeof MEMBER_STATUSES)[number];

export interface MemberRecord {
  status: MemberStatus;
  created_at: string;
  updated_at: string;
}

export interface Member extends MemberRecord {
  image_id: string;
  member_id: string;
}

export function getMember(cat: Catalog, imageId: string, project: string): Member | undefined {
  const rec = cat.members.get([imageId, project]);
  return rec && { ...rec, image_id: imageId, member_id: project };
}

/** An image's members, by project id. */
export function listMembers(cat: Catalog, imageId: string): Member[] {
  const out: Member[] = [];
  // Image ids are ASCII: "\uffff" sorts after every project id of this image.
  for (const { key, value } of cat.members.getRange({ start: [imageId], end: [imageId, "\uffff"] })) {
    out.push({ ...value, image_id: imageId, member_id: key[1] });
  }
  return out;
}

export function countMembers(cat: Catalog, imageId: string): number {
  return cat.members.getKeysCount({ start: [imageId], end: [imageId, "\uffff"] });
}

export function putMember(cat: Catalog, m: Member): void {
  const { image_id, member_id, ...rec } = m;
  cat.members.putSync([image_id, member_id], rec);
}

export function removeMember(cat: Catalog, imageId: string, project: string): void {
  cat.members.removeSync([imageId, project]);
}

/** Drops every membership of an image (it is being deleted). */
export function removeMembers(cat: Catalog, imageId: string): void {
  for (const key of [...cat.members.getKeys({ start: [imageId], end: [imageId, "\uffff"] })]) {
    cat.members.removeSync(key);
  }
}
