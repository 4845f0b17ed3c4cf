import { spawnSync } from "node:child_process";

/**
 * The external programs tests run, and the Debian package that installs each. Off CI a missing
 * program skips only what needs it, saying what to install; in CI (where .ci/run installs them
 * all) it fails.
 */
export const PACKAGES = {
  "qemu-img": "qemu-utils",
  xorriso: "xorriso",
  genisoimage: "genisoimage",
  sfdisk: "fdisk",
  prlimit: "util-linux",
} as const;

export type Tool = keyof typeof PACKAGES;

const found = new Map<string, boolean>();

function installed(program: string): boolean {
  let yes = found.get(program);
  if (yes === undefined) {
    yes = spawnSync("sh", ["-c", 'command -v "$1"', "sh", program]).status === 0;
    found.set(program, yes);
  }
  return yes;
}

/** The programs among `programs` that are not on PATH. */
export function missingTools(programs: readonly Tool[]): Tool[] {
  return programs.filter((p) => !installed(p));
}

/** "missing xorriso, genisoimage (apt-get install xorriso genisoimage)" */
function missingMessage(missing: readonly string[], install?: string): string {
  const packages = [...new Set(missing.map((p) => PACKAGES[p as Tool] ?? p))];
  return `missing ${missing.join(", ")} (${install ?? `apt-get install ${packages.join(" ")}`})`;
}

function failInCi(message: string): void {
  if (process.env.CI) throw new Error(`CI must have these programs (.ci/run installs them): ${message}`);
}

const warned = new Set<string>();

/**
 * Whether every one of `programs` is installed, for work that is not a test case of its own (a
 * hook making inputs for several cases). Off CI a missing one is warned about once; in CI it
 * throws.
 */
export function toolsPresent(programs: readonly Tool[], what: string): boolean {
  const missing = missingTools(programs);
  if (missing.length === 0) return true;
  const message = missingMessage(missing);
  failInCi(`${message}, for ${what}`);
  if (!warned.has(`${message} ${what}`)) {
    warned.add(`${message} ${what}`);
    console.warn(`skipping ${what}: ${message}`);
  }
  return false;
}

/**
 * For a test case that needs `programs`, called first in its body: the case runs when they are
 * all installed. Otherwise, off CI it is skipped with a note naming the missing programs and the
 * packages that install them (shown beside the skipped test, and warned once per program); in
 * CI it fails with the same words.
 */
export function requireTools(ctx: { skip: (note?: string) => never }, programs: readonly Tool[]): void {
  const missing = missingTools(programs);
  if (missing.length === 0) return;
  const message = missingMessage(missing);
  failInCi(message);
  for (const p of missing) {
    if (warned.has(p)) continue;
    warned.add(p);
    console.warn(`skipping the tests that need ${p}: ${missingMessage([p])}`);
  }
  ctx.skip(message);
}

/**
 * Whether the external programs a whole test file needs are installed. Off CI a missing one skips
 * the file with a message saying what to install; in CI it fails. (Where cases need different
 * programs, each declares its own with requireTools instead.)
 */
export function haveTools(programs: string[], install: string): boolean {
  const missing = programs.filter((p) => !installed(p));
  if (missing.length === 0) return true;
  const message = missingMessage(missing, install);
  failInCi(message);
  console.warn(`skipping: ${message}`);
  return false;
}
