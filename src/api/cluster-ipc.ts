/**
 * The messages between the primary of `tessera serve` and its workers, over Node's IPC
 * channel: a worker says it serves or why it could not start; either side asks the other a
 * question by name (a worker: a collection, the node's metrics; the primary: a worker's
 * metrics, its transfers in progress) and gets one answer, matched by id.
 */
import { TesseraError } from "../errors.js";

export type Message =
  | { tessera: "ready"; url: string }
  | { tessera: "failed"; code?: string; message: string }
  | { tessera: "ask"; id: number; what: string; arg?: unknown }
  | { tessera: "answer"; id: number; value?: unknown; error?: { code?: string; message: string } };

/**
 * Sends a message; `done` is told of a failure (a channel closed). Node emits an unhandled
 * 'error' on the process for a failed send without a callback, so there is always one.
 */
export type Send = (m: Message, done: (err: Error | null) => void) => void;

/** Answers to the questions the other side may ask, by name. */
export type Handlers = Record<string, (arg: unknown) => Promise<unknown>>;

export function isMessage(m: unknown): m is Message {
  return typeof m === "object" && m !== null && typeof (m as { tessera?: unknown }).tessera === "string";
}

/** An error as it crosses the channel: its code survives, so the API maps it as it would here. */
export function errorOf(e: { code?: string; message: string }): Error {
  return e.code ? new TesseraError(e.code, e.message) : new Error(e.message);
}

export function wireError(e: unknown): { code?: string; message: string } {
  const err = e as { code?: unknown; message?: unknown };
  return {
    ...(typeof err?.code === "string" ? { code: err.code } : {}),
    message: typeof err?.message === "string" ? err.message : String(e),
  };
}

interface Waiting {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer?: NodeJS.Timeout;
}

/** One end of the channel to one process: asks it questions and answers its own. */
export class Channel {
  private next = 0;
  private readonly waiting = new Map<number, Waiting>();

  constructor(
    private readonly send: Send,
    private readonly handlers: Handlers,
  ) {}

  /** Asks `what`; rejects with the other side's error, or after `timeoutMs` (0: never). */
  ask(what: string, arg?: unknown, timeoutMs = 0): Promise<unknown> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const w: Waiting = { resolve, reject };
      if (timeoutMs > 0) {
        w.timer = setTimeout(
          () => this.settle(id, { error: { message: `no answer to ${what}` } }),
          timeoutMs,
        );
      }
      this.waiting.set(id, w);
      this.send({ tessera: "ask", id, what, arg }, (err) => {
        if (err) this.settle(id, { error: wireError(err) });
      });
    });
  }

  /** Takes an ask or an answer from the other side; false for other messages. */
  receive(m: Message): boolean {
    if (m.tessera === "answer") {
      this.settle(m.id, m);
      return true;
    }
    if (m.tessera !== "ask") return false;
    const handler = this.handlers[m.what];
    const answer = handler ? handler(m.arg) : Promise.reject(new Error(`no answer to ${m.what} here`));
    answer.then(
      (value) => this.reply({ tessera: "answer", id: m.id, value }),
      (e) => this.reply({ tessera: "answer", id: m.id, error: wireError(e) }),
    );
    return true;
  }

  /** Fails every question still waiting: the other side is gone. */
  close(reason: string): void {
    for (const id of [...this.waiting.keys()]) this.settle(id, { error: { message: reason } });
  }

  private reply(m: Message): void {
    // An asker that is gone waits for no answer.
    this.send(m, () => {});
  }

  private settle(id: number, a: { value?: unknown; error?: { code?: string; message: string } }): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    if (a.error) w.reject(errorOf(a.error));
    else w.resolve(a.value);
  }
}
