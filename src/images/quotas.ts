/**
 * Per-project quotas, with the names of Glance's unified limits: image_count_total,
 * image_size_total (MiB), image_count_uploading and image_stage_total (MiB). A project's limits
 * are its own entry, else the defaults; a limit absent or negative is no limit. Usage is what
 * the project owns, counted in logical bytes: two tenants uploading the same image each pay for
 * it in full, whatever deduplication saves the operator.
 */

import type { RecordsReader } from "../catalog/catalog.js";
import { TooLargeError } from "../errors.js";

export const QUOTA_NAMES = [
  "image_size_total",
  "image_stage_total",
  "image_count_total",
  "image_count_uploading",
] as const;
export type QuotaName = (typeof QUOTA_NAMES)[number];

export type QuotaLimits = Partial<Record<QuotaName, number>>;

export interface QuotaConfig {
  default?: QuotaLimits;
  projects?: Record<string, QuotaLimits>;
}

const MIB = 1024 * 1024;

/** Over a quota: Glance's 413 with oslo.limit's words. */
export class QuotaExceededError extends TooLargeError {
  constructor(project: string | null, name: QuotaName, limit: number, usage: number, delta: number) {
    super(
      "The request returned a 413 Request Entity Too Large. This generally means that rate limiting or a quota threshold was breached.\n\nThe response body:\n" +
        `Project ${project} is over a limit for [Resource ${name} is over limit of ${limit} due to current usage ${usage} and delta ${delta}]`,
    );
  }
}

export class Quotas {
  constructor(private readonly config: QuotaConfig | undefined) {}

  /** Whether any quota is configured (Glance's use_keystone_limits): without, usage is {}. */
  get enabled(): boolean {
    return this.config !== undefined;
  }

  /** A limit for `owner`, or undefined for none. Images without an owner have none. */
  limit(owner: string | null, name: QuotaName): number | undefined {
    if (!this.config || owner === null) return undefined;
    const v = this.config.projects?.[owner]?.[name] ?? this.config.default?.[name];
    return v === undefined || v < 0 ? undefined : v;
  }

  /** Inside a unit of work (`records` its tx): one more image for `owner` must fit image_count_total. */
  async checkNewImage(records: RecordsReader, owner: string | null): Promise<void> {
    const limit = this.limit(owner, "image_count_total");
    if (limit === undefined) return;
    const used = (await records.ownerUsage(owner)).images;
    if (used + 1 > limit) throw new QuotaExceededError(owner, "image_count_total", limit, used, 1);
  }

  /**
   * Inside the unit of work (`records` its tx) that starts an upload (or a stage, `staging`): one more
   * upload must fit image_count_uploading, and the owner must be under image_size_total (and,
   * staging, image_stage_total). Returns how many bytes the upload may bring (Infinity without
   * limits).
   */
  async checkUploadStart(records: RecordsReader, owner: string | null, staging = false): Promise<number> {
    const usage = await records.ownerUsage(owner);
    const uploads = this.limit(owner, "image_count_uploading");
    if (uploads !== undefined && usage.uploading + 1 > uploads) {
      throw new QuotaExceededError(owner, "image_count_uploading", uploads, usage.uploading, 1);
    }
    const room = this.roomFor(owner, "image_size_total", usage.bytes, 0);
    return staging ? Math.min(room, this.roomFor(owner, "image_stage_total", usage.staged ?? 0, 0)) : room;
  }

  /** Inside the commit (`records` its tx) of an upload (or stage) of `size` bytes: it must still fit. */
  async checkUploadCommit(
    records: RecordsReader,
    owner: string | null,
    size: number,
    staging = false,
  ): Promise<void> {
    const usage = await records.ownerUsage(owner);
    this.roomFor(owner, "image_size_total", usage.bytes, size);
    if (staging) this.roomFor(owner, "image_stage_total", usage.staged ?? 0, size);
  }

  /** Bytes left under a MiB limit with `used` bytes used; throws when `adding` does not fit. */
  private roomFor(owner: string | null, name: QuotaName, used: number, adding: number): number {
    const limit = this.limit(owner, name);
    if (limit === undefined) return Number.POSITIVE_INFINITY;
    const room = limit * MIB - used;
    if (room <= 0 || adding > room) {
      throw new QuotaExceededError(owner, name, limit, Math.floor(used / MIB), Math.ceil(adding / MIB));
    }
    return room;
  }

  /** GET /v2/info/usage: each quota's limit and the owner's usage (sizes in MiB, as Glance). */
  async usage(
    records: RecordsReader,
    owner: string | null,
  ): Promise<Partial<Record<QuotaName, { limit: number; usage: number }>>> {
    if (!this.enabled) return {};
    const u = await records.ownerUsage(owner);
    const used: Record<QuotaName, number> = {
      image_size_total: Math.floor(u.bytes / MIB),
      image_stage_total: Math.floor((u.staged ?? 0) / MIB),
      image_count_total: u.images,
      image_count_uploading: u.uploading,
    };
    const out: Partial<Record<QuotaName, { limit: number; usage: number }>> = {};
    for (const name of QUOTA_NAMES) out[name] = { limit: this.limit(owner, name) ?? -1, usage: used[name] };
    return out;
  }
}
