import { spawnSync } from "node:child_process";

/**
 * Whether the external programs a test file needs are installed. Off CI a missing one skips
 * the file with a message saying what to install; in CI (where .ci/run installs them) it fails.
 */
export function haveTools(programs: string[], install: string): boolean {
  const missing = programs.filter((p) => spawnSync("sh", ["-c", `command -v ${p}`]).status !== 0);
  if (missing.length === 0) return true;
  const message = `missing ${missing.join(", ")} (${install})`;
  if (process.env.CI) throw new Error(`CI must have these programs (.ci/run installs them): ${message}`);
  console.warn(`skipping: ${message}`);
  return false;
}
