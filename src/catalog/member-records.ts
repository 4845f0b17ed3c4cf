/**
 * Image members: the projects an image is shared with, and whether each has accepted it
 * (Glance's image sharing). Keyed [image id, project] so that an image's members are one range
 * and a membership one lookup.
 */
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
