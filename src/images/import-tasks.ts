/**
 * An import's task (Glance's api_image_import): created pending with the import's lock, made
 * processing when the import runs, ended success or failure, kept 48 hours after it ends and
 * then removed.
 */
import { randomUUID } from "node:crypto";
import type { Catalog, CatalogTx } from "../catalog/catalog.js";
import type { TaskRecord } from "../catalog/task-records.js";
import { NotFoundError } from "../errors.js";

/** Glance keeps ended tasks 48 hours. */
const TASK_TTL_MS = 48 * 3600 * 1000;

export class TaskNotFoundError extends NotFoundError {
  constructor(id: string) {
    super(`task ${id}`);
    this.message = `Task with the given ID ${id} not found`;
  }
}

/** The method a task's import request named. */
export function methodOf(t: TaskRecord): string {
  const req = t.input.import_req as { method?: { name?: string } } | undefined;
  return req?.method?.name ?? "";
}

/** A new pending task for an import into `stores` of image `imageId`. */
export function newTask(
  imageId: string,
  who: { projectId: string | null; userId: string | null; requestId: string | null },
  body: Record<string, unknown>,
  stores: string[],
  node?: string,
): TaskRecord {
  const now = new Date().toISOString();
  return {
    id: randomUUID(),
    type: "api_image_import",
    status: "pending",
    owner: who.projectId,
    image_id: imageId,
    user_id: who.userId,
    request_id: who.requestId,
    input: { image_id: imageId, import_req: body, backend: stores },
    result: null,
    message: "",
    created_at: now,
    updated_at: now,
    expires_at: null,
    ...(node === undefined ? {} : { node }),
  };
}

/** Inside a unit of work: a task's end. */
export async function endTask(
  tx: CatalogTx,
  t: TaskRecord,
  status: "success" | "failure",
  message: string,
): Promise<void> {
  const now = new Date();
  await tx.putTask({
    ...t,
    status,
    message,
    result: status === "success" ? { image_id: t.image_id } : null,
    updated_at: now.toISOString(),
    expires_at: new Date(now.getTime() + TASK_TTL_MS).toISOString(),
  });
}

/** A change to a task, in its own unit of work (nothing if the task is gone). */
export async function setTask(cat: Catalog, id: string, change: Partial<TaskRecord>): Promise<void> {
  await cat.transact(async (tx) => {
    const t = await tx.getTask(id);
    if (t) await tx.putTask({ ...t, ...change, updated_at: new Date().toISOString() });
  });
}

/** Whether an ended task is past its expiry at `now` (ms). */
export function expired(t: TaskRecord, now: number): boolean {
  return t.expires_at ? Date.parse(t.expires_at) < now : false;
}

/** Removes the ended tasks past their expiry at `now` (ms), in one unit of work. */
export async function removeExpired(cat: Catalog, now: number): Promise<void> {
  await cat.transact(async (tx) => {
    for (const t of await tx.listTasks()) {
      if (expired(t, now)) await tx.removeTask(t);
    }
  });
}
