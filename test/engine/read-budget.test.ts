/**
 * Reads share one read-ahead budget: one read alone keeps its whole read-ahead; many unread
 * reads together hold about the budget plus one small segment each, and every byte comes back
 * when they end.
 */
import { afterEach, expect, it } from "vitest";
import { prng } from "../helpers/data.js";
import { pieces, tempEngine } from "../helpers/store.js";

const MiB = 1024 * 1024;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

it("many unread downloads hold about the budget, one alone its full read-ahead, and all of it comes back", async () => {
  const t = await tempEngine({ readBudgetBytes: 16 * MiB, readAheadBytes: 8 * MiB, verifyOnRead: false });
  cleanups.push(t.cleanup);
  const { engine } = t;
  const data = Buffer.from(prng(4, 40 * MiB));
  const { manifestId } = await engine.ingest(pieces(data));

  const one = engine.readPooled(manifestId);
  const first = await one.next();
  expect(engine.readBudget.heldBytes).toBeGreaterThanOrEqual(8 * MiB);
  first.value?.release();
  await one.return(undefined);
  expect(engine.readBudget.heldBytes).toBe(0);

  // Forty downloads whose clients read one piece and then nothing.
  const readers = Array.from({ length: 40 }, () => engine.readPooled(manifestId));
  for (const r of readers) await r.next();
  expect(engine.readBudget.active).toBe(40);
  expect(engine.readBudget.heldBytes).toBeLessThanOrEqual(16 * MiB + 40 * 2 * 256 * 1024 + 4 * MiB);
  for (const r of readers) await r.return(undefined);
  expect(engine.readBudget.heldBytes).toBe(0);
  expect(engine.readBudget.active).toBe(0);
});
