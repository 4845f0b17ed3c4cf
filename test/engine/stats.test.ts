/**
 * Dedup accounting is exact: logical bytes count every holder, stored bytes every referenced
 * chunk once, and an object's unique and shared bytes add up to what it stores.
 */
import { describe, expect, it } from "vitest";
import { prng } from "../helpers/data.js";
import { pieces, tempStores } from "../helpers/store.js";

const MiB = 1024 * 1024;
const store = tempStores();

describe("dedup accounting", () => {
  it("counts logical bytes per holder, stored bytes once, and splits an object's bytes into unique and shared", async () => {
    const { engine } = await store();
    const a = Buffer.concat([Buffer.from(prng(1, 4 * MiB)), Buffer.alloc(MiB), Buffer.from(prng(2, MiB))]);
    const b = Buffer.concat([a.subarray(0, 4 * MiB), Buffer.from(prng(3, 2 * MiB))]);
    const ra = await engine.ingest(pieces(a));
    await engine.ingest(pieces(a)); // a second holder of the same object
    const rb = await engine.ingest(pieces(b));
    const st = await engine.stats();
    const local = st.stores[0];
    expect(local).toMatchObject({
      store: "local",
      objects: 2,
      holders: 3,
      logicalBytes: 2 * a.length + b.length,
      storedBytes: ra.bytesStored + rb.bytesStored,
    });
    expect(local?.chunks).toBe(ra.newChunks + rb.newChunks);
    expect(local?.packBytes).toBeGreaterThan(local?.storedBytes as number);
    expect(st.total.dedupRatio).toBe(
      Math.round(((2 * a.length + b.length) / (ra.bytesStored + rb.bytesStored)) * 100) / 100,
    );

    const ob = await engine.objectStats(rb.manifestId);
    expect(ob.uniqueBytes).toBe(rb.bytesStored);
    expect(ob.uniqueBytes + ob.sharedBytes).toBe(ob.storedBytes);
    expect(ob.maxSharers).toBe(1);
    // Two holders of the same data: nothing of it is only theirs.
    const oa = await engine.objectStats(ra.manifestId);
    expect(oa).toMatchObject({
      size: a.length,
      zeroBytes: ra.zeroBytes,
      uniqueBytes: 0,
      storedBytes: ra.bytesStored,
    });

    // Released and collected: the figures follow.
    await engine.release(rb.manifestId);
    await engine.gc({ graceSeconds: 0 });
    expect((await engine.stats()).stores[0]).toMatchObject({
      objects: 1,
      holders: 2,
      storedBytes: ra.bytesStored,
    });
  });
});
