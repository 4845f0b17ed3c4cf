/**
 * What a failed LMDB commit means to the rest of Tessera. A commit refused for lack of space
 * (ENOSPC, EDQUOT, EIO, or the map full) is a CatalogUnwritableError: the transaction did
 * nothing, and the same write succeeds once space is freed. Anything else passes through as it was.
 */
import { CatalogUnwritableError } from "../../errors.js";

// EIO too: a full tmpfs answers LMDB's page writes with it.
const NO_SPACE = new Set<unknown>([5, 28, 122, "EIO", "ENOSPC", "EDQUOT", -30792 /* MDB_MAP_FULL */]);

/** lmdb-js reports a failed commit as an error whose `commitError` promise holds the cause. */
export async function catalogWriteError(e: unknown): Promise<unknown> {
  const echo = (e as { commitError?: unknown } | null)?.commitError;
  const cause =
    echo instanceof Promise
      ? await echo.then(
          () => e,
          (c: unknown) => c,
        )
      : e;
  const code = (cause as { code?: unknown } | null)?.code;
  const message = cause instanceof Error ? cause.message : "";
  if (NO_SPACE.has(code) || /No space left on device|Input\/output error|MDB_MAP_FULL/.test(message)) {
    return new CatalogUnwritableError(
      "The catalog cannot write now (its disk is full or failing); nothing was changed.",
      cause,
    );
  }
  return e;
}

/**
 * lmdb-js (3.x), when a commit fails, also rejects promises of its own that nothing can await
 * (a copy of the commit failure and its cause). The caller of the transaction gets the failure;
 * these echoes would otherwise end the process as unhandled rejections, so they are dropped.
 * Every other unhandled rejection is thrown on, as Node does by default.
 */
let installed = false;
export function dropLmdbCommitEchoes(): void {
  if (installed) return;
  installed = true;
  process.on("unhandledRejection", (reason) => {
    if (isCommitEcho(reason)) return;
    throw reason;
  });
}

function isCommitEcho(reason: unknown): boolean {
  if (!(reason instanceof Error)) return false;
  if ((reason as { commitError?: unknown }).commitError instanceof Promise) return true;
  return (
    /Attempting to write page at position/.test(reason.message) && reason.stack?.includes("lmdb") === true
  );
}
