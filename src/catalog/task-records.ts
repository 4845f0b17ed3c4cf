/**
 * Tasks: the record of each import (Glance's api_image_import tasks), kept after they end so
 * that clients can read how they went, and indexed by image. Writers call these inside a
 * catalog transaction.
 */
import type { Catalog } from "./catalog.js";

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
}

export function getTask(cat: Catalog, id: string): TaskRecord | undefined {
  return cat.tasks.get(id);
}

export function putTask(cat: Catalog, t: TaskRecord): void {
  cat.tasks.putSync(t.id, t);
  cat.taskByImage.putSync([t.image_id, t.id], "");
}

export function removeTask(cat: Catalog, t: TaskRecord): void {
  cat.tasks.removeSync(t.id);
  cat.taskByImage.removeSync([t.image_id, t.id]);
}

/** Every task, newest first. */
export function listTasks(cat: Catalog): TaskRecord[] {
  return [...cat.tasks.getRange()].map((e) => e.value).sort(newestFirst);
}

/** An image's tasks, newest first. */
export function tasksOfImage(cat: Catalog, imageId: string): TaskRecord[] {
  const out: TaskRecord[] = [];
  for (const key of cat.taskByImage.getKeys({ start: [imageId], end: [imageId, "\uffff"] })) {
    const t = getTask(cat, key[1]);
    if (t) out.push(t);
  }
  return out.sort(newestFirst);
}

function newestFirst(a: TaskRecord, b: TaskRecord): number {
  return a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : a.id < b.id ? 1 : -1;
}
