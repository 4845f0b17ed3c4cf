/**
 * Saving the record objects of the images committed units of work changed, without letting a
 * slow or unreachable store hold the image API up: the catalog keeps serving records while a
 * store is down (docs/operations.md), and a save retried against it could take its backend's
 * whole retry budget. A request waits for its saves only up to `waitMs` (on a healthy store
 * they are done long before, and the client hears back once its record is on the stores); past
 * that they go on behind it.
 *
 * Per image one save runs at a time and at most one waits behind it, taking every change that
 * comes meanwhile: a save writes the image as the catalog has it when it starts, so one after
 * the last change is enough, however many there were. A failed save is told to `onFailure`
 * (logged and counted by the server) and left for `tessera image-records --write`.
 */
import type { ImageChanges } from "../catalog/record-changes.js";
import type { Engine } from "../engine/engine.js";
import { saveRecord } from "./record-objects.js";

/** How long a request waits for its records' saves by default. */
export const DEFAULT_SAVE_WAIT_MS = 1000;

interface Queued {
  former: Set<string>;
  done: Promise<void>;
}

export class RecordSaver {
  private readonly running = new Map<string, Promise<void>>();
  private readonly queued = new Map<string, Queued>();

  constructor(
    private readonly engine: Engine,
    private readonly onFailure: (id: string, error: unknown) => void,
    private readonly waitMs = DEFAULT_SAVE_WAIT_MS,
  ) {}

  /** Saves every changed image's record, waiting up to waitMs for them; never rejects. */
  async saveChanged(changes: ImageChanges): Promise<void> {
    const all = Promise.all([...changes].map(([id, former]) => this.save(id, former)));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.waitMs);
    });
    await Promise.race([all, late]);
    clearTimeout(timer);
  }

  /** Resolves once every save asked for so far has finished (at close). */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running.values());
  }

  /** A save of `id` that starts after this call; merged with one already waiting. */
  private save(id: string, former: Set<string>): Promise<void> {
    const waiting = this.queued.get(id);
    if (waiting) {
      for (const s of former) waiting.former.add(s);
      return waiting.done;
    }
    const before = this.running.get(id) ?? Promise.resolve();
    const next: Queued = { former: new Set(former), done: Promise.resolve() };
    next.done = before.then(async () => {
      this.queued.delete(id);
      try {
        await saveRecord(this.engine, id, next.former);
      } catch (e) {
        try {
          this.onFailure(id, e);
        } catch {
          // Reporting a failed save must not turn it into an unhandled rejection.
        }
      }
    });
    this.queued.set(id, next);
    this.running.set(id, next.done);
    void next.done.then(() => {
      if (this.running.get(id) === next.done) this.running.delete(id);
    });
    return next.done;
  }
}
