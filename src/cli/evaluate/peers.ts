/**
 * The tools operators compare with, run on the same images where they are installed: casync
 * (`casync make`, a content-defined chunk store), restic and borg (deduplicating backup
 * repositories) and plain zstd (compression alone). What each stored and how fast it went; a tool
 * that is not installed is reported as not measured, never estimated.
 */
import { execFile } from "node:child_process";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface PeerResult {
  name: string;
  measured: boolean;
  /** Why not, when not measured. */
  reason?: string;
  version?: string;
  command?: string;
  storedBytes?: number;
  ingestSeconds?: number;
  ingestMBps?: number;
  dedupRatio?: number;
}

/**
 * An image as a peer gets it: the file to read (a link's target: restic and borg would store a
 * link as a link) and its name in the corpus, for the per-image files casync and zstd write.
 */
export interface PeerImage {
  path: string;
  name: string;
}

export const PEER_NAMES = ["casync", "restic", "borg", "zstd"] as const;

/** Bytes of every file under `dir`. */
async function du(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

async function installed(program: string): Promise<boolean> {
  try {
    await run("sh", ["-c", `command -v ${program}`]);
    return true;
  } catch {
    return false;
  }
}

async function version(program: string, args: string[]): Promise<string> {
  const { stdout, stderr } = await run(program, args).catch((e) => e as { stdout: string; stderr: string });
  return `${stdout ?? ""}${stderr ?? ""}`.trim().split("\n")[0] ?? "";
}

interface PeerSpec {
  program: string;
  versionArgs: string[];
  /**
   * Stores the images under `dir`, each of its runs stopped by `signal`; returns the directory
   * whose size is what it stored, and the command.
   */
  store(
    images: PeerImage[],
    dir: string,
    signal?: AbortSignal,
  ): Promise<{ storeDir: string; command: string }>;
}

const MAX_BUFFER = 64 * 1024 * 1024;

const PEERS: Record<(typeof PEER_NAMES)[number], PeerSpec> = {
  casync: {
    program: "casync",
    versionArgs: ["--version"],
    async store(images, dir, signal) {
      const chunks = join(dir, "default.castr");
      await mkdir(join(dir, "index"), { recursive: true });
      for (const img of images) {
        await run(
          "casync",
          ["make", `--store=${chunks}`, join(dir, "index", `${img.name}.caibx`), img.path],
          { maxBuffer: MAX_BUFFER, signal },
        );
      }
      return { storeDir: chunks, command: "casync make --store=STORE INDEX.caibx IMAGE (per image)" };
    },
  },
  restic: {
    program: "restic",
    versionArgs: ["version"],
    async store(images, dir, signal) {
      const env = {
        ...process.env,
        RESTIC_PASSWORD: "tessera-evaluate",
        RESTIC_CACHE_DIR: join(dir, "cache"),
      };
      const repo = join(dir, "repo");
      await run("restic", ["init", "--repo", repo], { env, signal });
      await run("restic", ["backup", "--repo", repo, "--quiet", ...images.map((i) => i.path)], {
        env,
        maxBuffer: MAX_BUFFER,
        signal,
      });
      return { storeDir: repo, command: "restic init; restic backup IMAGES (default compression)" };
    },
  },
  borg: {
    program: "borg",
    versionArgs: ["--version"],
    async store(images, dir, signal) {
      const env = {
        ...process.env,
        BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: "yes",
        BORG_BASE_DIR: join(dir, "base"),
      };
      const repo = join(dir, "repo");
      await run("borg", ["init", "--encryption=none", repo], { env, signal });
      await run("borg", ["create", `${repo}::evaluate`, ...images.map((i) => i.path)], {
        env,
        maxBuffer: MAX_BUFFER,
        signal,
      });
      return {
        storeDir: repo,
        command: "borg init --encryption=none; borg create REPO::evaluate IMAGES (lz4)",
      };
    },
  },
  zstd: {
    program: "zstd",
    versionArgs: ["--version"],
    async store(images, dir, signal) {
      const out = join(dir, "zstd");
      await mkdir(out, { recursive: true });
      for (const img of images) {
        await run("zstd", ["-3", "-T0", "-q", "-f", "-o", join(out, `${img.name}.zst`), img.path], {
          signal,
        });
      }
      return { storeDir: out, command: "zstd -3 -T0 IMAGE (per image; no deduplication)" };
    },
  },
};

/**
 * Runs one peer over `images` in the scratch directory `dir` (removed afterwards); `signal`
 * stops it (the result then says it failed, and is not to be kept).
 */
export async function runPeer(
  name: (typeof PEER_NAMES)[number],
  images: PeerImage[],
  dir: string,
  signal?: AbortSignal,
): Promise<PeerResult> {
  const spec = PEERS[name];
  if (!(await installed(spec.program)))
    return { name, measured: false, reason: `${spec.program} is not installed` };
  const v = await version(spec.program, spec.versionArgs);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  try {
    const logical = (await Promise.all(images.map((i) => stat(i.path)))).reduce((n, s) => n + s.size, 0);
    const t0 = performance.now();
    const { storeDir, command } = await spec.store(images, dir, signal);
    const seconds = (performance.now() - t0) / 1000;
    const stored = await du(storeDir);
    return {
      name,
      measured: true,
      version: v,
      command,
      storedBytes: stored,
      ingestSeconds: Math.round(seconds * 1000) / 1000,
      ingestMBps: Math.round((logical / 1e6 / seconds) * 10) / 10,
      dedupRatio: Math.round((logical / Math.max(stored, 1)) * 1000) / 1000,
    };
  } catch (e) {
    return {
      name,
      measured: false,
      version: v,
      reason: `${spec.program} failed: ${(e as Error).message.split("\n")[0]}`,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
