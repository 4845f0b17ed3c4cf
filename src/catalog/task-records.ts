/**
 * Tasks: the record of each import (Glance's api_image_import tasks), kept after they end so
 * that clients can read how they went, and indexed by image.
 */
export const TASK_STATUSES = ["pending", "processing", "success", "failure"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export interface TaskRecord {
  id: string;
  type: "api_image_import";
  status: TaskStatus;
  owner: string | null;
  image_id: string;
  user_id: string | null;
  request_id: string | null;
  input: Record<string, unknown>;
  result: Record<string, unknown> | null;
  message: string;
  created_at: string;
  updated_at: string;
  /** When an ended task may be removed (Glance keeps them 48 hours); null while it runs. */
  expires_at: string | null;
  /**
   * The node running it (host:data directory; not shown to clients): on a shared catalog
   * only that node, restarting, counts it cut off, not another node starting beside it.
   */
  node?: string;
}

/** Newest first (ties by id, descending): the order task lists are in. */
export function newestFirst(a: TaskRecord, b: TaskRecord): number {
  return a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : a.id < b.id ? 1 : -1;
}
