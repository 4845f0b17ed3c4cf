/**
 * Import step 1 for web-download: the URI's bytes streamed into the engine (web-source.ts),
 * inspected on the way, and recorded as the image's staged data in the unit of work that
 * commits them, so that an interruption leaves nothing unaccounted for. (glance-direct's data
 * is what PUT /stage left; copy-image starts from the image's own.)
 */
import type { TaskRecord } from "../catalog/task-records.js";
import { inspectStream } from "../formats/inspect-stream.js";
import { FormatRejectedError } from "../formats/rules.js";
import { ours } from "./import-lock.js";
import type { ImportContext, ImportRequest } from "./imports.js";
import { webSource } from "./web-source.js";

/**
 * The URI's bytes into `store`, recorded as the image's staged data. Returns the inspection's
 * verdict (none for other methods: their staged data is inspected in step 2).
 */
export async function webDownload(
  imp: ImportContext,
  task: TaskRecord,
  req: ImportRequest,
  store: string,
  signal: AbortSignal,
): Promise<{ virtualSize: number | undefined } | undefined> {
  if (req.method !== "web-download") return undefined;
  const svc = imp.images;
  const cat = svc.engine.catalog;
  const rec = await ours(cat.records, task.image_id, task.id);
  const room = await svc.quotas.checkUploadStart(cat.records, rec.owner);
  const source = webSource(req.uri as string, {
    ...imp.options.webDownload,
    filter: imp.options.filter,
    signal,
  });
  const inspected = svc.formats.inspect
    ? inspectStream(source, rec.disk_format as string, svc.formats)
    : undefined;
  let virtualSize: number | undefined;
  await svc.engine.ingest(inspected?.pieces ?? source, {
    maxBytes: Math.min(svc.sizeCap, room),
    store,
    writeThrough: svc.dedupWriteThrough,
    inCommit: async (tx, obj) => {
      const now = await ours(tx, task.image_id, task.id);
      const verdict = inspected?.result();
      if (verdict && verdict.violations.length > 0) throw new FormatRejectedError(verdict.violations);
      virtualSize = verdict?.detection.virtualSize;
      await svc.quotas.checkUploadCommit(tx, now.owner, obj.size);
      const staged = { object: obj.manifestId, store, size: obj.size };
      await tx.putImage({ ...now, staged, size: obj.size, updated_at: svc.now() }, now);
    },
  });
  return { virtualSize };
}
