/**
 * Glance's interoperable image import: each import runs as a task in this process, in three
 * steps, each committed in its own transaction:
 *
 *   1. the data: glance-direct takes what PUT /stage left (already chunks in the engine);
 *      web-download streams the URI into the engine (recorded as the image's `staged` data, so
 *      that an interruption leaves nothing unaccounted for); copy-image starts from the
 *      image's own data;
 *   2. the image becomes active on that data in the first target store: converted first by the
 *      image_conversion plugin if configured, with the inject-metadata plugin's properties;
 *   3. copies to the other target stores, each moving only the chunks that store lacks.
 *
 * As Glance: the image carries os_glance_import_task (the lock: one import per image at a
 * time, broken only when its task is an hour stale), os_glance_importing_to_stores and
 * os_glance_failed_import. A failed import leaves a new image queued (staged data released), a
 * copied one active. Tasks survive restarts: Imports.open marks any a crash cut off as failed
 * and leaves its image as a failure would, never stuck importing; but an image a crash finds
 * active stays active with what it had committed.
 */
import { randomUUID } from "node:crypto";
import { getImage, type ImageRecord, putImage } from "../catalog/image-records.js";
import {
  getTask,
  listTasks,
  putTask,
  removeTask,
  type TaskRecord,
  tasksOfImage,
} from "../catalog/task-records.js";
import { convertObject } from "../engine/convert.js";
import type { CommittedObject } from "../engine/ingest.js";
import {
  BadRequestError,
  BusyError,
  ConflictError,
  GoneError,
  NotFoundError,
  TesseraError,
} from "../errors.js";
import { inspectStream } from "../formats/inspect-stream.js";
import type { ConversionLimits } from "../formats/qemu-img.js";
import { FormatRejectedError } from "../formats/rules.js";
import type { Access, ImageService } from "./images.js";
import {
  checkUri,
  DEFAULT_IMPORT_FILTER,
  type ImportFilter,
  type Resolver,
  webSource,
} from "./web-source.js";

export const IMPORT_METHODS = ["glance-direct", "web-download", "copy-image"] as const;
export type ImportMethod = (typeof IMPORT_METHODS)[number];

const LOCK = "os_glance_import_task";
const IMPORTING = "os_glance_importing_to_stores";
const FAILED = "os_glance_failed_import";
/** Glance keeps ended tasks 48 hours; a lock is stale after an hour (two while pending). */
const TASK_TTL_MS = 48 * 3600 * 1000;
const LOCK_EXPIRY_MS = 3600 * 1000;
const MiB = 1024 * 1024;
/** Recording a failure must work on a full disk: it may use the catalog's space reserve. */
const PUT_BACK = { useReserve: true };

export interface ImportOptions {
  /** The enabled methods (Glance's enabled_import_methods). */
  methods: ImportMethod[];
  /** Glance's import_filtering_opts for web-download. */
  filter: ImportFilter;
  webDownload: { idleTimeoutMs: number; maxRedirects: number; resolver?: Resolver };
  /** The image_conversion plugin: the disk format every imported image ends up in. */
  convertTo?: string;
  conversion?: { limits?: ConversionLimits; scratchDir?: string };
  /** web-downloads running at once (each an ingest's buffers); past it, BusyError. 0: no limit. */
  maxWebDownloads?: number;
  /** The inject_image_metadata plugin: properties set on every imported image... */
  injectProperties?: Record<string, string>;
  /** ...unless the importer has one of these roles (Glance's ignore_user_roles). */
  injectIgnoreRoles?: string[];
}

export const DEFAULT_IMPORT_OPTIONS: ImportOptions = {
  methods: [...IMPORT_METHODS],
  filter: DEFAULT_IMPORT_FILTER,
  webDownload: { idleTimeoutMs: 60_000, maxRedirects: 5 },
  injectIgnoreRoles: ["admin"],
};

export interface ImportRequest {
  method: ImportMethod;
  uri?: string;
  /** Target stores (Glance's `stores`, or the X-Image-Meta-Store header); default: the default store. */
  stores?: string[];
  allStores?: boolean;
  allStoresMustSucceed?: boolean;
  /** The request body as the client sent it (the task's input). */
  body: Record<string, unknown>;
}

export interface Importer {
  projectId: string | null;
  userId: string | null;
  roles: ReadonlySet<string>;
  requestId: string | null;
}

/** Why an import cannot go on, for the task's message. */
class ImportFailed extends TesseraError {
  constructor(message: string) {
    super("import_failed", message);
  }
}

export class TaskNotFoundError extends NotFoundError {
  constructor(id: string) {
    super(`task ${id}`);
    this.message = `Task with the given ID ${id} not found`;
  }
}

/** The method a task's import request named. */
function methodOf(t: TaskRecord): string {
  const req = t.input.import_req as { method?: { name?: string } } | undefined;
  return req?.method?.name ?? "";
}

/** The properties without the import lock. */
function unlocked(properties: Record<string, string>): Record<string, string> {
  const { [LOCK]: _, ...rest } = properties;
  return rest;
}

function storeList(v: string | undefined): string[] {
  return v ? v.split(",").filter((s) => s !== "") : [];
}

export class Imports {
  private readonly running = new Set<Promise<void>>();
  private webDownloads = 0;
  private readonly aborts = new Set<AbortController>();

  private constructor(
    readonly images: ImageService,
    readonly options: ImportOptions,
  ) {}

  private get cat() {
    return this.images.engine.catalog;
  }

  /**
   * Opens the import runner: tasks a crash cut off are failed and their images left as a
   * failure leaves them; ended tasks past their expiry are removed.
   */
  static async open(images: ImageService, options: Partial<ImportOptions> = {}): Promise<Imports> {
    const imports = new Imports(images, { ...DEFAULT_IMPORT_OPTIONS, ...options });
    const cat = imports.cat;
    const now = Date.now();
    await cat.transaction(() => {
      for (const t of listTasks(cat)) {
        if (t.status === "pending" || t.status === "processing") {
          imports.endTask(t, "failure", "The import was interrupted: the server stopped before it finished.");
          const rec = getImage(cat, t.image_id);
          if (rec) imports.settleInterrupted(rec, t.id, methodOf(t));
        } else if (t.expires_at && Date.parse(t.expires_at) < now) {
          removeTask(cat, t);
        }
      }
    }, PUT_BACK);
    return imports;
  }

  private lastPrune = Date.now();

  /**
   * Removes ended tasks past their expiry, at most once an hour (at an import's start), so that
   * a server that runs for months does not keep every task it ever ran.
   */
  private async pruneExpired(): Promise<void> {
    const now = Date.now();
    if (now - this.lastPrune < 3600 * 1000) return;
    this.lastPrune = now;
    await this.cat.transaction(() => {
      for (const t of listTasks(this.cat)) {
        if (t.expires_at && Date.parse(t.expires_at) < now) removeTask(this.cat, t);
      }
    });
  }

  /** The stores an import targets, checked (Glance's get_stores_from_request). */
  private targets(req: ImportRequest, storeHeader: string | undefined): string[] {
    const names = [...this.images.engine.stores.keys()];
    let stores: string[];
    if (req.allStores) {
      if (req.stores !== undefined || storeHeader !== undefined) {
        throw new BadRequestError(
          "All_stores parameter can't be used with x-image-meta-store header or stores parameter",
        );
      }
      stores = names;
    } else if (req.stores !== undefined) {
      if (storeHeader !== undefined) {
        throw new BadRequestError("Stores parameter and x-image-meta-store header can't be both specified");
      }
      stores = req.stores;
    } else {
      stores = [storeHeader ?? this.images.engine.defaultStore.name];
    }
    for (const s of stores) {
      if (!names.includes(s)) throw new ConflictError(`Store for identifier ${s} not found`);
    }
    return [...new Set(stores)];
  }

  /**
   * POST /v2/images/{id}/import: checks the request against the image as Glance does, takes
   * the image's import lock and creates the task in one transaction, then runs the import in
   * the background. Returns the task (none when copy-image finds nothing to copy).
   */
  async start(
    id: string,
    req: ImportRequest,
    who: Importer,
    access: Access | undefined,
    storeHeader?: string,
  ): Promise<TaskRecord | undefined> {
    if (!this.options.methods.includes(req.method)) {
      throw new BadRequestError(`Import method ${req.method} is not enabled.`);
    }
    if (req.method === "web-download") {
      if (!req.uri) throw new BadRequestError("URI for web-download must be given.");
      checkUri(req.uri, this.options.filter);
      const max = this.options.maxWebDownloads ?? 0;
      if (max > 0 && this.webDownloads >= max) {
        throw new BusyError(
          `The server has ${this.webDownloads} web-downloads in progress: try again later.`,
        );
      }
    }
    let stores = this.targets(req, storeHeader);
    const cat = this.cat;
    await this.pruneExpired();
    let task: TaskRecord | undefined;
    await this.images.update(
      id,
      (rec) => {
        const m = req.method;
        if (rec.status === "active" && m !== "copy-image") {
          throw new ConflictError("Image with status active cannot be target for import");
        }
        if (rec.status !== "active" && m === "copy-image") {
          throw new ConflictError("Only images with status active can be targeted for copying");
        }
        if (rec.status !== "queued" && m === "web-download") {
          throw new ConflictError(`Image needs to be in 'queued' state to use '${m}' method`);
        }
        if ((rec.status !== "uploading" || !rec.staged) && m === "glance-direct") {
          throw new ConflictError("Image needs to be staged before 'glance-direct' method can be used");
        }
        if (!rec.container_format)
          throw new ConflictError("'container_format' needs to be set before import");
        if (!rec.disk_format) throw new ConflictError("'disk_format' needs to be set before import");
        this.checkLock(rec);
        if (m === "copy-image") {
          const present = stores.filter((s) => rec.stores.includes(s));
          if (req.allStores) stores = stores.filter((s) => !rec.stores.includes(s));
          else if (present.length > 0)
            throw new BadRequestError(`Image is already present at store '${present[0]}'`);
          if (stores.length === 0) return rec; // already everywhere: Glance answers 202 and does nothing
        }
        if (m === "web-download") this.images.quotas.checkUploadStart(cat, rec.owner);
        else this.images.quotas.checkUploadCommit(cat, rec.owner, 0);
        const now = new Date().toISOString();
        task = {
          id: randomUUID(),
          type: "api_image_import",
          status: "pending",
          owner: who.projectId,
          image_id: id,
          user_id: who.userId,
          request_id: who.requestId,
          input: { image_id: id, import_req: req.body, backend: stores },
          result: null,
          message: "",
          created_at: now,
          updated_at: now,
          expires_at: null,
        };
        putTask(cat, task);
        return {
          ...rec,
          status: m === "copy-image" ? rec.status : "importing",
          properties: { ...rec.properties, [LOCK]: task.id, [IMPORTING]: stores.join(","), [FAILED]: "" },
        };
      },
      access,
    );
    if (!task) return undefined;
    const started = task;
    // A failure the task could not even record (the catalog unwritable) leaves the task
    // processing: the next start settles it. It must not end the process.
    const web = req.method === "web-download";
    if (web) this.webDownloads++;
    const run = this.run(started, req, stores, who)
      .catch(() => {})
      .finally(() => {
        this.running.delete(run);
        if (web) this.webDownloads--;
      });
    this.running.add(run);
    return started;
  }

  /** Glance's import lock: a live task's lock is a 409; one an hour stale is broken. */
  private checkLock(rec: ImageRecord): void {
    const holder = rec.properties[LOCK];
    if (!holder) return;
    const t = getTask(this.cat, holder);
    const expiry = t?.status === "pending" ? 2 * LOCK_EXPIRY_MS : LOCK_EXPIRY_MS;
    if (t && Date.now() - Date.parse(t.updated_at) < expiry) {
      throw new ConflictError(
        `New operation on image '${rec.id}' is not permitted as prior operation is still in progress`,
      );
    }
    if (t && (t.status === "pending" || t.status === "processing"))
      this.endTask(t, "failure", "Expired lock preempted");
  }

  /** Inside a transaction: a task's end. */
  private endTask(t: TaskRecord, status: "success" | "failure", message: string): void {
    const now = new Date();
    putTask(this.cat, {
      ...t,
      status,
      message,
      result: status === "success" ? { image_id: t.image_id } : null,
      updated_at: now.toISOString(),
      expires_at: new Date(now.getTime() + TASK_TTL_MS).toISOString(),
    });
  }

  private async setTask(id: string, change: Partial<TaskRecord>): Promise<void> {
    await this.cat.transaction(() => {
      const t = getTask(this.cat, id);
      if (t) putTask(this.cat, { ...t, ...change, updated_at: new Date().toISOString() });
    });
  }

  /**
   * Inside a transaction: the image as a failed import of `method` leaves it. New data
   * (web-download, glance-direct) goes back to queued with everything it brought released, even
   * stores it already reached (Glance's all_stores_must_succeed); an image being copied stays
   * active. Stores not reached are listed as failed; the lock is dropped.
   */
  private settleFailed(rec: ImageRecord, taskId: string, method: string): void {
    if (rec.properties[LOCK] !== taskId) return;
    // A store the image is in was reached, whatever the lists say (a crash can fall between a
    // copy's commit and its bookkeeping).
    const failed = [...storeList(rec.properties[FAILED]), ...storeList(rec.properties[IMPORTING])].filter(
      (s) => !rec.stores.includes(s),
    );
    const properties = unlocked({ ...rec.properties, [IMPORTING]: "", [FAILED]: failed.join(",") });
    let next: ImageRecord = { ...rec, properties, updated_at: this.images.now() };
    if (method !== "copy-image" && (rec.status === "importing" || rec.status === "active")) {
      this.images.releaseData(rec);
      next = {
        ...next,
        status: "queued",
        staged: null,
        object: null,
        stores: [],
        size: null,
        virtual_size: null,
        checksum: null,
        os_hash_algo: null,
        os_hash_value: null,
      };
    }
    putImage(this.cat, next, rec);
  }

  /**
   * Inside a transaction at start: the image as a crash left it. What the import had committed
   * stays: an image already active keeps its data in the stores it reached (a crash is not
   * Glance's all_stores_must_succeed failure, which reverts a live import; reverting here
   * would throw away an image clients may already have downloaded). Stores not reached are
   * listed as failed. An image not yet active is settled as a failure.
   */
  private settleInterrupted(rec: ImageRecord, taskId: string, method: string): void {
    if (rec.status === "active") this.settleFailed(rec, taskId, "copy-image");
    else this.settleFailed(rec, taskId, method);
  }

  /** The image, if it is still the one this task imports into (not deleted, lock held). */
  private ours(id: string, taskId: string): ImageRecord {
    const rec = getImage(this.cat, id);
    if (!rec || rec.properties[LOCK] !== taskId)
      throw new GoneError(`Image ${id} was deleted during its import.`);
    return rec;
  }

  private async run(task: TaskRecord, req: ImportRequest, stores: string[], who: Importer): Promise<void> {
    const abort = new AbortController();
    this.aborts.add(abort);
    try {
      await this.setTask(task.id, { status: "processing" });
      const [first, ...rest] = stores as [string, ...string[]];
      if (req.method !== "copy-image") {
        const inspected = await this.bringData(task, req, first, abort.signal);
        await this.activate(task, first, who, inspected);
      }
      const copies = req.method === "copy-image" ? stores : rest;
      await this.copyTo(task, copies, req.allStoresMustSucceed !== false);
      const rec = getImage(this.cat, task.image_id);
      await this.cat.transaction(() => {
        const now = getImage(this.cat, task.image_id);
        const t = getTask(this.cat, task.id);
        if (t) this.endTask(t, "success", `Copied ${Math.floor((rec?.size ?? 0) / MiB)} MiB`);
        if (now && now.properties[LOCK] === task.id) {
          const properties = unlocked({ ...now.properties, [IMPORTING]: "" });
          putImage(this.cat, { ...now, properties, updated_at: this.images.now() }, now);
        }
      });
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      await this.cat.transaction(() => {
        const t = getTask(this.cat, task.id);
        if (t) this.endTask(t, "failure", message);
        const rec = getImage(this.cat, task.image_id);
        if (rec) this.settleFailed(rec, task.id, req.method);
      }, PUT_BACK);
    } finally {
      this.aborts.delete(abort);
    }
  }

  /**
   * Step 1 for web-download: the URI's bytes into `store`, inspected on the way, recorded as the
   * image's staged data. Returns the inspection's verdict (none for glance-direct: its staged
   * data is inspected in step 2).
   */
  private async bringData(
    task: TaskRecord,
    req: ImportRequest,
    store: string,
    signal: AbortSignal,
  ): Promise<{ virtualSize: number | undefined } | undefined> {
    if (req.method !== "web-download") return undefined;
    const svc = this.images;
    const rec = this.ours(task.image_id, task.id);
    const room = svc.quotas.checkUploadStart(this.cat, rec.owner);
    const source = webSource(req.uri as string, {
      ...this.options.webDownload,
      filter: this.options.filter,
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
      inCommit: (obj) => {
        const now = this.ours(task.image_id, task.id);
        const verdict = inspected?.result();
        if (verdict && verdict.violations.length > 0) throw new FormatRejectedError(verdict.violations);
        virtualSize = verdict?.detection.virtualSize;
        svc.quotas.checkUploadCommit(this.cat, now.owner, obj.size);
        const staged = { object: obj.manifestId, store, size: obj.size };
        putImage(this.cat, { ...now, staged, size: obj.size, updated_at: svc.now() }, now);
      },
    });
    return { virtualSize };
  }

  /**
   * Step 2: the image becomes active on its staged data in `store` (converted first, if the
   * conversion plugin is on), with the injected properties, in one commit that also drops the
   * staged hold.
   */
  private async activate(
    task: TaskRecord,
    store: string,
    who: Importer,
    inspected: { virtualSize: number | undefined } | undefined,
  ): Promise<void> {
    const svc = this.images;
    const engine = svc.engine;
    const rec = this.ours(task.image_id, task.id);
    const staged = rec.staged;
    if (!staged) throw new ImportFailed("The image has no staged data to import.");
    const inject = this.injected(who);
    const becomeActive = (now: ImageRecord, data: ImageRecord, extra: Partial<ImageRecord> = {}) => {
      const importing = storeList(now.properties[IMPORTING]).filter((s) => s !== store);
      putImage(
        this.cat,
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
    const to = this.options.convertTo;
    if (to && to !== rec.disk_format) {
      await convertObject(engine, staged.object, {
        from: rec.disk_format as string,
        to,
        policy: svc.formats,
        maxBytes: svc.sizeCap,
        store,
        ...this.options.conversion,
        inCommit: (obj, inspection) => {
          const now = this.ours(task.image_id, task.id);
          svc.releaseStaged(staged);
          becomeActive(now, svc.withData(now, obj, inspection.detection.virtualSize), { disk_format: to });
        },
      });
      return;
    }
    // Without conversion the staged data is the image's: inspected as an upload would be, if
    // it was not on its way in.
    const object = engine.stat(staged.object);
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
    const commit = (dropStaged: boolean) => {
      const now = this.ours(task.image_id, task.id);
      if (dropStaged) svc.releaseStaged(staged);
      becomeActive(now, svc.withData(now, data, virtualSize));
    };
    if (staged.store === store) {
      // The staged hold becomes the image's.
      await this.cat.transaction(() => commit(false));
    } else {
      await engine.copy(staged.object, store, { inCommit: () => commit(true) });
    }
  }

  private injected(who: Importer): Record<string, string> {
    const props = this.options.injectProperties;
    if (!props) return {};
    const ignore = this.options.injectIgnoreRoles ?? [];
    return ignore.some((r) => who.roles.has(r.toLowerCase())) ? {} : props;
  }

  /** Step 3: copies to `stores`; a failure ends the import or, if allowed, is listed and passed. */
  private async copyTo(task: TaskRecord, stores: string[], mustSucceed: boolean): Promise<void> {
    for (const store of stores) {
      try {
        this.ours(task.image_id, task.id);
        await this.images.copyToStore(task.image_id, store);
        await this.moveStore(task, store, false);
      } catch (e) {
        if (mustSucceed || e instanceof GoneError) throw e;
        await this.moveStore(task, store, true);
      }
    }
  }

  /** A store done: out of os_glance_importing_to_stores, and into the failed list if it failed. */
  private async moveStore(task: TaskRecord, store: string, failed: boolean): Promise<void> {
    await this.cat.transaction(() => {
      const rec = getImage(this.cat, task.image_id);
      if (!rec || rec.properties[LOCK] !== task.id) return;
      const importing = storeList(rec.properties[IMPORTING]).filter((s) => s !== store);
      const failures = storeList(rec.properties[FAILED]);
      if (failed) failures.push(store);
      const properties = {
        ...rec.properties,
        [IMPORTING]: importing.join(","),
        [FAILED]: failures.join(","),
      };
      putImage(this.cat, { ...rec, properties, updated_at: this.images.now() }, rec);
    });
  }

  task(id: string): TaskRecord {
    const t = getTask(this.cat, id);
    if (!t) throw new TaskNotFoundError(id);
    return t;
  }

  tasks(): TaskRecord[] {
    return listTasks(this.cat);
  }

  tasksOf(imageId: string): TaskRecord[] {
    return tasksOfImage(this.cat, imageId);
  }

  /** Imports in progress. */
  get inProgress(): number {
    return this.running.size;
  }

  /** Waits for the imports in progress (at most `ms`), then aborts their downloads. */
  async close(ms = 10_000): Promise<void> {
    const all = Promise.allSettled([...this.running]);
    const timer = new Promise((r) => setTimeout(r, ms).unref());
    await Promise.race([all, timer]);
    for (const a of this.aborts) a.abort();
    await all;
  }
}
