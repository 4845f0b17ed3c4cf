/** Glance's own metadata definition files, as Debian's glance-common installs them. */
import { existsSync } from "node:fs";

export const GLANCE_METADEFS = "/usr/share/glance-common/metadefs";

/**
 * Whether the files are installed. Off CI their absence skips what needs them, saying what to
 * install; in CI (.ci/run installs glance-common) it fails.
 */
export function haveGlanceMetadefs(): boolean {
  if (existsSync(GLANCE_METADEFS)) return true;
  const message = `${GLANCE_METADEFS} is missing (apt-get install glance-common)`;
  if (process.env.CI) throw new Error(`CI must have Glance's metadefs files: ${message}`);
  console.warn(`skipping: ${message}`);
  return false;
}
