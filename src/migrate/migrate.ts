/**
 * `tessera migrate-from-glance`'s work: every image of a Glance migrated (migrate-image.ts), a
 * few at a time, then a report of what moved and what it cost to store. The images are listed
 * first (records only, a few KiB each), so that progress has a total and an image listed twice
 * while Glance changes under the listing is migrated once. Glance lists killed images to no
 * one: they are migrated only when named.
 */
import type { ImageService } from "../images/images.js";
import type { GlanceImage, GlanceSource } from "./glance-source.js";
import { migrateImage, type Outcome } from "./migrate-image.js";

export interface MigrateOptions {
  /** Only these images, by id (default: every image Glance lists to an admin). */
  only?: string[];
  /**
   * Images migrated at once (default 1: one copy already keeps two cores busy, measured in
   * bench/migrate.ts; two copies of images sharing a base both write its new chunks).
   */
  parallel?: number;
  /** Told of each image's outcome as it comes. */
  onImage?: (image: GlanceImage, outcome: Outcome) => void;
  /** Told of progress: images done of all, data bytes read of all to read at most. */
  onProgress?: (p: { images: number; ofImages: number; bytes: number; ofBytes: number }) => void;
}

export interface MigrationReport {
  images: {
    listed: number;
    copied: number;
    created: number;
    updated: number;
    unchanged: number;
    skipped: number;
    failed: number;
  };
  /** Data bytes read from Glance (those of failed copies included). */
  bytesRead: number;
  /** The data of the images copied, and what of it was new to the store (compressed). */
  bytesCopied: number;
  bytesStored: number;
  /** bytesCopied / bytesStored; null when nothing new was stored. */
  dedupRatio: number | null;
  /** Every image not migrated; `mismatch`: data that differed from Glance's digests. */
  failures: { id: string; name: string | null; why: string; mismatch: boolean }[];
  /**
   * Images Tessera has that Glance no longer lists (deleted there since an earlier run, or
   * Tessera's own): left alone, for the operator to judge. Killed images are not counted (Glance
   * lists them to no one). Not looked for when only some images were migrated.
   */
  notInGlance: string[];
  seconds: number;
}

export async function migrateFromGlance(
  svc: ImageService,
  glance: GlanceSource,
  options: MigrateOptions = {},
): Promise<MigrationReport> {
  const started = Date.now();
  const listed = new Map<string, GlanceImage>();
  if (options.only) {
    for (const id of options.only) listed.set(id, await glance.image(id));
  } else {
    for await (const image of glance.images()) listed.set(image.id, image);
  }
  const queue = [...listed.values()];
  const ofBytes = queue.reduce((n, i) => n + (typeof i.size === "number" ? i.size : 0), 0);

  const report: MigrationReport = {
    images: { listed: queue.length, copied: 0, created: 0, updated: 0, unchanged: 0, skipped: 0, failed: 0 },
    bytesRead: 0,
    bytesCopied: 0,
    bytesStored: 0,
    dedupRatio: null,
    failures: [],
    notInGlance: [],
    seconds: 0,
  };
  let done = 0;
  let bytes = 0;
  const tell = () => options.onProgress?.({ images: done, ofImages: queue.length, bytes, ofBytes });
  const one = async (image: GlanceImage) => {
    let outcome: Outcome;
    try {
      outcome = await migrateImage(svc, glance, image, (n) => {
        bytes += n;
        tell();
      });
    } catch (e) {
      outcome = { result: "failed", why: (e as Error).message };
    }
    report.images[outcome.result]++;
    if (outcome.result === "copied") {
      report.bytesCopied += outcome.bytes;
      report.bytesStored += outcome.stored;
    }
    if (outcome.result === "failed") {
      const name = typeof image.name === "string" ? image.name : null;
      report.failures.push({ id: image.id, name, why: outcome.why, mismatch: outcome.mismatch === true });
    }
    done++;
    options.onImage?.(image, outcome);
    tell();
  };
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, options.parallel ?? 1) }, async () => {
    while (next < queue.length) await one(queue[next++] as GlanceImage);
  });
  await Promise.all(lanes);

  if (!options.only) report.notInGlance = await notListed(svc, listed);
  report.bytesRead = bytes;
  report.dedupRatio = report.bytesStored === 0 ? null : report.bytesCopied / report.bytesStored;
  report.seconds = (Date.now() - started) / 1000;
  return report;
}

/** Tessera's images (killed ones aside) that are not in `listed`, by pages of the id index. */
async function notListed(svc: ImageService, listed: Map<string, GlanceImage>): Promise<string[]> {
  const out: string[] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await svc.list({
      sort: [{ key: "id", dir: "asc" }],
      limit: 1000,
      marker,
      match: () => true,
    });
    for (const rec of page) if (!listed.has(rec.id) && rec.status !== "killed") out.push(rec.id);
    if (page.length < 1000) return out;
    marker = page[page.length - 1]?.id;
  }
}
