/**
 * The writers of a GC hammer: three workers that, until `deadline`, ingest images sharing a
 * base (whole, or its first MiBs and bytes of their own) and release random ones, so that
 * chunks keep gaining and losing their last reference while a collector runs. Returns what
 * should survive: each object with its bytes and holders.
 */
import type { Engine } from "../../src/engine/engine.js";
import { prng } from "./data.js";
import { pieces } from "./store.js";

const MiB = 1024 * 1024;

export async function hammerWrites(
  engine: Engine,
  deadline: number,
  seed: number,
): Promise<Map<string, { data: Buffer; holders: number }>> {
  const bases = [Buffer.from(prng(seed, 3 * MiB)), Buffer.from(prng(seed + 1, 3 * MiB))];
  const live = new Map<string, { data: Buffer; holders: number }>();
  const rand = prng(seed + 2, 4096);
  let k = 0;
  const next = (n: number) => (rand[k++ % rand.length] as number) % n;
  const worker = async (w: number) => {
    let i = 0;
    while (Date.now() < deadline) {
      if (live.size > 0 && next(3) === 0) {
        const ids = [...live.keys()];
        const id = ids[next(ids.length)] as string;
        const entry = live.get(id) as { data: Buffer; holders: number };
        if (--entry.holders === 0) live.delete(id);
        await engine.release(id);
        continue;
      }
      const base = bases[next(2)] as Buffer;
      const own = Buffer.from(prng(1000 * w + i++, 64 * 1024 * (1 + next(8))));
      const data = next(4) === 0 ? base : Buffer.concat([base.subarray(0, (1 + next(3)) * MiB), own]);
      const r = await engine.ingest(pieces(data, 100_000 + next(200_000)));
      const entry = live.get(r.manifestId);
      if (entry) entry.holders++;
      else live.set(r.manifestId, { data, holders: 1 });
    }
  };
  await Promise.all([worker(1), worker(2), worker(3)]);
  return live;
}
