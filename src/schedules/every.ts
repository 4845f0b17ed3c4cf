/**
 * A background job every `seconds` (0: never) that never overlaps itself: a tick that finds the
 * last run still going is skipped, so a run longer than the interval does not pile up more.
 * `stop` ends the ticks and resolves when the run in progress (if any) is over.
 */
export function every(seconds: number, job: () => Promise<void>): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const timer =
    seconds > 0
      ? setInterval(() => {
          running ??= job().finally(() => {
            running = undefined;
          });
        }, seconds * 1000)
      : undefined;
  // A timer must not keep a process alive that has nothing else to do.
  timer?.unref();
  return {
    stop: async () => {
      if (timer) clearInterval(timer);
      await running;
    },
  };
}
