/**
 * Waiting for something to happen, instead of sleeping a fixed time and assuming it has: on a
 * busy machine (the whole suite on two cores) a fixed sleep is sometimes too short, and a poll
 * that gives up quietly goes on to assert against a state never reached.
 */

/** Default deadline: generous, since a condition that holds ends the wait at once. */
export const WAIT_MS = 30_000;

/**
 * Calls `check` every `everyMs` until it returns something other than undefined or false, and
 * resolves with that; fails naming `what` once `timeoutMs` has passed.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = WAIT_MS, everyMs = 20 }: { timeoutMs?: number; everyMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await check();
    if (got !== undefined && got !== false) return got;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
