/**
 * Import step 2: the image becomes active on its staged data in the first target store,
 * converted first if the image_conversion plugin is on, with the inject_image_metadata
 * plugin's properties, in one commit that also drops the staged hold.
 */
import type { CatalogTx } from "../catalog/catalog.js";
import type { ImageRecord } from "../catalog/image-records.js";
import type { TaskRecord } from "../catalog/task-records.js";
import { convertObject } from "../engine/convert.js";
import type { CommittedObject } from "../engine/ingest.js";
import { TesseraError } from "../errors.js";
import { inspectStream } from "../formats/inspect-stream.js";
import { FormatRejectedError } from "../formats/rules.js";
import { releaseStaged } from "./image-data.js";
import { IMPORTING, ours, storeList } from "./import-lock.js";
import type { ImportContext, Importer } from "./imports.js";

/** Why an import cannot go on, for the task's message. */
class ImportFailed extends TesseraError {
  constructor(message: string) {
    super("import_failed", message);
  }
}

/**
 * The image active on its staged data in `store` (converted first, if the conversion plugin is
 * on), with the injected properties, in one commit that also drops the staged hold.
 * `inspected`: step 1's verdict, when the data was inspected on its way in.
 */
export async function activate(
  imp: ImportContext,
  task: TaskRecord,
  store: string,
  who: Importer,
  inspected: { virtualSize: number | undefined } | undefined,
): Promise<void> {
  const svc = imp.images;
  const engine = svc.engine;
  const rec = await ours(engine.catalog.records, task.image_id, task.id);
  const staged = rec.staged;
  if (!staged) throw new ImportFailed("The image has no staged data to import.");
  const inject = injected(imp, who);
  const becomeActive = async (
    tx: CatalogTx,
    now: ImageRecord,
    data: ImageRecord,
    extra: Partial<ImageRecord> = {},
  ): Promise<void> => {
    const importing = storeList(now.properties[IMPORTING]).filter((s) => s !== store);
    await tx.putImage(
      {
        ...data,
        ...extra,
        status: "active",
        stores: [store],
        staged: null,
        properties: { ...data.properties, ...inject, [IMPORTING]: importing.join(",") },
      },
      now,
    );
  };
  const to = imp.options.convertTo;
  if (to && to !== rec.disk_format) {
    await convertObject(engine, staged.object, {
      from: rec.disk_format as string,
      to,
      policy: svc.formats,
      maxBytes: svc.sizeCap,
      store,
      ...imp.options.conversion,
      inCommit: async (tx, obj, inspection) => {
        const now = await ours(tx, task.image_id, task.id);
        await releaseStaged(tx, staged);
        await becomeActive(tx, now, svc.withData(now, obj, inspection.detection.virtualSize), {
          disk_format: to,
        });
      },
    });
    return;
  }
  // Without conversion the staged data is the image's: inspected as an upload would be, if
  // it was not on its way in.
  const object = await engine.stat(staged.object);
  let virtualSize = inspected?.virtualSize;
  if (svc.formats.inspect && !inspected) {
    const check = inspectStream(engine.read(staged.object), rec.disk_format as string, svc.formats);
    for await (const _ of check.pieces) {
      // read through: the inspector sees every byte
    }
    const verdict = check.result();
    if (verdict.violations.length > 0) throw new FormatRejectedError(verdict.violations);
    virtualSize = verdict.detection.virtualSize;
  }
  const data: Pick<CommittedObject, "manifestId" | "size" | "hashes"> = {
    manifestId: staged.object,
    size: object.size,
    hashes: object.hashes,
  };
  const commit = async (tx: CatalogTx, dropStaged: boolean): Promise<void> => {
    const now = await ours(tx, task.image_id, task.id);
    if (dropStaged) await releaseStaged(tx, staged);
    await becomeActive(tx, now, svc.withData(now, data, virtualSize));
  };
  if (staged.store === store) {
    // The staged hold becomes the image's.
    await engine.catalog.transact((tx) => commit(tx, false));
  } else {
    await engine.copy(staged.object, store, { inCommit: (tx) => commit(tx, true) });
  }
}

/** The inject_image_metadata plugin's properties, unless the importer has an ignored role. */
function injected(imp: ImportContext, who: Importer): Record<string, string> {
  const props = imp.options.injectProperties;
  if (!props) return {};
  const ignore = imp.options.injectIgnoreRoles ?? [];
  return ignore.some((r) => who.roles.has(r.toLowerCase())) ? {} : props;
}
