import { describe, expect, it } from "vitest";
import { BackendUnavailableError } from "../../src/errors.js";
import type { ObjectBackend, ObjectInfo } from "../../src/store/backend.js";
import { RetryingBackend } from "../../src/store/retrying-backend.js";

/** A backend whose first `failures` calls fail as transient. */
function flaky(failures: number): ObjectBackend {
  let left = failures;
  const fail = () => {
    if (left-- > 0) throw new BackendUnavailableError("down for now");
  };
  return {
    put: async () => fail(),
    get: async () => {
      fail();
      return Buffer.alloc(0);
    },
    stat: async () => {
      fail();
      return undefined;
    },
    delete: async () => fail(),
    async *list(): AsyncIterable<ObjectInfo> {
      fail();
      yield { name: "a", size: 1 };
    },
    close: async () => {},
  };
}

describe("retrying backend", () => {
  // A first bound of 100 s, capped at 5 ms: only the cap lets these finish in time.
  const options = { attempts: 4, baseDelayMs: 100_000, maxDelayMs: 5 };

  it("caps every backoff at maxDelayMs, listings included", async () => {
    const gets = new RetryingBackend(flaky(3), options);
    await gets.get("a", 0, 0);
    expect(gets.retries).toBe(3);
    const lists = new RetryingBackend(flaky(3), options);
    const names: string[] = [];
    for await (const o of lists.list("")) names.push(o.name);
    expect(names).toEqual(["a"]);
    expect(lists.retries).toBe(3);
  }, 2_000);
});
