/**
 * Glance's interoperable image import: each import runs as a task in this process, in three
 * steps, each committed in its own unit of work:
 *
 *   1. the data: glance-direct takes what PUT /stage left (already chunks in the engine);
 *      web-download streams the URI into the engine (import-web-download.ts); copy-image
 *      starts from the image's own data;
 *   2. the image becomes active on that data in the first target store: converted first by the
 *      image_conversion plugin if configured, with the inject-metadata plugin's properties
 *      (import-activate.ts);
 *   3. copies to the other target stores, each moving only the chunks that store lacks
 *      (import-copies.ts).
 *
 * As Glance: the image carries os_glance_import_task (the lock: one import per image at a
 * time, broken only when its task is an hour stale), os_glance_importing_to_stores and
 * os_glance_failed_import (import-lock.ts). A failed import leaves a new image queued (staged
 * data released), a copied one active. Tasks (import-tasks.ts) survive restarts: Imports.open
 * marks any a crash cut off as failed and leaves its image as a failure would, never stuck
 * importing; but an image a crash finds active stays active with what it had committed
 * (import-recovery.ts).
 */
import type { TaskRecord } from "../catalog/task-records.js";
import { BadRequestError, BusyError, ConflictError } from "../errors.js";
import type { ConversionLimits } from "../formats/qemu-img.js";
import type { Access, ImageService } from "./images.js";
import { activate } from "./import-activate.js";
import { copyTo } from "./import-copies.js";
import { checkLock, FAILED, IMPORTING, LOCK, settleFailed, unlocked } from "./import-lock.js";
import { recoverImports } from "./import-recovery.js";
import { endTask, newTask, removeExpired, setTask, TaskNotFoundError } from "./import-tasks.js";
import { webDownload } from "./import-web-download.js";
import { checkUri, DEFAULT_IMPORT_FILTER, type ImportFilter, type Resolver } from "./web-source.js";

export { TaskNotFoundError } from "./import-tasks.js";

export const IMPORT_METHODS = ["glance-direct", "web-download", "copy-image"] as const;
export type ImportMethod = (typeof IMPORT_METHODS)[number];

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
  /** Fail the tasks a crash cut off at open (default true; false in a cluster worker). */
  recover?: boolean;
  /** This node (host:data directory): its tasks say so, for its own recovery only. */
  node?: string;
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

/** What the import steps need of the runner. */
export interface ImportContext {
  readonly images: ImageService;
  readonly options: ImportOptions;
}

export class Imports implements ImportContext {
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
   * failure leaves them; ended tasks past their expiry are removed (import-recovery.ts).
   */
  static async open(images: ImageService, options: Partial<ImportOptions> = {}): Promise<Imports> {
    const imports = new Imports(images, { ...DEFAULT_IMPORT_OPTIONS, ...options });
    // A cluster worker's primary recovered them once before any worker served: a worker
    // (re)starting must not fail the imports running in the others.
    if (options.recover !== false) await recoverImports(images, options.node);
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
    await removeExpired(this.cat, now);
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
   * the image's import lock and creates the task in one unit of work, then runs the import in
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
    const targets = this.targets(req, storeHeader);
    let stores = targets;
    await this.pruneExpired();
    let task: TaskRecord | undefined;
    await this.images.update(
      id,
      async (rec, tx) => {
        // The unit of work may run again: nothing carried over from a run before.
        task = undefined;
        stores = targets;
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
        await checkLock(tx, rec);
        if (m === "copy-image") {
          const present = stores.filter((s) => rec.stores.includes(s));
          if (req.allStores) stores = stores.filter((s) => !rec.stores.includes(s));
          else if (present.length > 0)
            throw new BadRequestError(`Image is already present at store '${present[0]}'`);
          // Already everywhere: 202 and nothing to do, the import done at once. Clients wait for
          // os_glance_importing_to_stores to be there and empty (tempest's copy test does).
          if (stores.length === 0) {
            // Unlocked too: a lock still there is a stale one checkLock has just ended.
            const properties = unlocked({ ...rec.properties, [IMPORTING]: "", [FAILED]: "" });
            return { ...rec, properties, updated_at: this.images.now() };
          }
        }
        if (m === "web-download") await this.images.quotas.checkUploadStart(tx, rec.owner);
        else await this.images.quotas.checkUploadCommit(tx, rec.owner, 0);
        const t = newTask(id, who, req.body, stores, this.options.node);
        await tx.putTask(t);
        task = t;
        return {
          ...rec,
          status: m === "copy-image" ? rec.status : "importing",
          properties: { ...rec.properties, [LOCK]: t.id, [IMPORTING]: stores.join(","), [FAILED]: "" },
        };
      },
      access,
    );
    if (!task) return undefined;
    const started: TaskRecord = task;
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

  private async run(task: TaskRecord, req: ImportRequest, stores: string[], who: Importer): Promise<void> {
    const abort = new AbortController();
    this.aborts.add(abort);
    try {
      await setTask(this.cat, task.id, { status: "processing" });
      const [first, ...rest] = stores as [string, ...string[]];
      if (req.method !== "copy-image") {
        const inspected = await webDownload(this, task, req, first, abort.signal);
        await activate(this, task, first, who, inspected);
      }
      const copies = req.method === "copy-image" ? stores : rest;
      await copyTo(this, task, copies, req.allStoresMustSucceed !== false);
      const rec = await this.cat.records.getImage(task.image_id);
      await this.cat.transact(async (tx) => {
        const now = await tx.getImage(task.image_id);
        const t = await tx.getTask(task.id);
        if (t) await endTask(tx, t, "success", `Copied ${Math.floor((rec?.size ?? 0) / MiB)} MiB`);
        if (now && now.properties[LOCK] === task.id) {
          const properties = unlocked({ ...now.properties, [IMPORTING]: "" });
          await tx.putImage({ ...now, properties, updated_at: this.images.now() }, now);
        }
      });
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      await this.cat.transact(async (tx) => {
        const t = await tx.getTask(task.id);
        if (t) await endTask(tx, t, "failure", message);
        const rec = await tx.getImage(task.image_id);
        if (rec) await settleFailed(this.images, tx, rec, task.id, req.method);
      }, PUT_BACK);
    } finally {
      this.aborts.delete(abort);
    }
  }

  async task(id: string): Promise<TaskRecord> {
    const t = await this.cat.records.getTask(id);
    if (!t) throw new TaskNotFoundError(id);
    return t;
  }

  tasks(): Promise<TaskRecord[]> {
    return this.cat.records.listTasks();
  }

  tasksOf(imageId: string): Promise<TaskRecord[]> {
    return this.cat.records.tasksOfImage(imageId);
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
