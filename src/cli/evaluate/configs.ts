/**
 * The storage configurations `tessera evaluate` compares: chunker parameters, compression,
 * pack size and where the packs go (a filesystem, or an S3 endpoint).
 */
import { type ChunkerParams, chunkerForAverage, validateChunkerParams } from "../../chunker/params.js";
import type { S3StoreConfig } from "../../store/open-store.js";

/** An S3 store to evaluate on: the same keys as a server's S3 store (docs/configuration.md). */
export type S3Target = S3StoreConfig;

export interface EvalConfig {
  name: string;
  chunker: ChunkerParams;
  compression: "zstd" | "none";
  /** Target pack size, bytes. */
  packSize: number;
  store: { type: "filesystem" } | S3Target;
}

const MiB = 1024 * 1024;

/** Three chunk sizes, each with and without compression, on the local filesystem. */
export const DEFAULT_EVAL_CONFIGS: EvalConfig[] = [16, 64, 256].flatMap((kib) =>
  (["none", "zstd"] as const).map((compression) => ({
    name: `${kib}k-${compression}`,
    chunker: chunkerForAverage(kib * 1024),
    compression,
    packSize: 16 * MiB,
    store: { type: "filesystem" as const },
  })),
);

export class EvalConfigError extends Error {}

/**
 * A configurations file: a JSON array of {"name", "chunker": {"min", "avg", "max"} or
 * "avgChunkKiB", "compression", "packSizeMiB", "store"}; unknown keys are refused.
 */
export function parseConfigs(doc: unknown): EvalConfig[] {
  const bad = (why: string) => new EvalConfigError(`configs: ${why}`);
  if (!Array.isArray(doc) || doc.length === 0) throw bad("expected a non-empty JSON array of configurations");
  const names = new Set<string>();
  return doc.map((raw, i) => {
    if (typeof raw !== "object" || raw === null) throw bad(`entry ${i} is not an object`);
    const c = raw as Record<string, unknown>;
    for (const k of Object.keys(c)) {
      if (!["name", "chunker", "avgChunkKiB", "compression", "packSizeMiB", "store"].includes(k)) {
        throw bad(`entry ${i}: unknown key "${k}"`);
      }
    }
    const name = c.name;
    if (typeof name !== "string" || !/^[A-Za-z0-9_.-]{1,64}$/.test(name))
      throw bad(`entry ${i}: name must be a short word`);
    if (names.has(name)) throw bad(`two configurations are named ${name}`);
    names.add(name);
    let chunker: ChunkerParams;
    if (c.chunker !== undefined) {
      chunker = c.chunker as ChunkerParams;
    } else if (typeof c.avgChunkKiB === "number") {
      chunker = chunkerForAverage(c.avgChunkKiB * 1024);
    } else {
      throw bad(`${name}: give chunker {min, avg, max} or avgChunkKiB`);
    }
    try {
      validateChunkerParams(chunker);
    } catch (e) {
      throw bad(`${name}: ${(e as Error).message}`);
    }
    const compression = c.compression ?? "none";
    if (compression !== "zstd" && compression !== "none")
      throw bad(`${name}: compression is "zstd" or "none"`);
    const packSizeMiB = c.packSizeMiB ?? 16;
    if (typeof packSizeMiB !== "number" || !(packSizeMiB >= 1 && packSizeMiB <= 1024)) {
      throw bad(`${name}: packSizeMiB from 1 to 1024`);
    }
    const store = (c.store ?? { type: "filesystem" }) as EvalConfig["store"];
    if (store.type === "s3") {
      for (const k of ["endpoint", "region", "bucket"] as const) {
        if (typeof store[k] !== "string" || store[k] === "") throw bad(`${name}: an s3 store needs ${k}`);
      }
    } else if (store.type !== "filesystem") {
      throw bad(`${name}: store type is "filesystem" or "s3"`);
    }
    return { name, chunker, compression, packSize: packSizeMiB * MiB, store };
  });
}
