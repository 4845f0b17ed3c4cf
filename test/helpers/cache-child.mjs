// A second process of the node filling the same chunk cache (test/cache/chunk-cache.test.ts):
// argv: cache dir, maxBytes, seed, count, size. Fills `count` chunks of `size` random bytes one
// at a time, then prints "done".
import { randomBytes } from "node:crypto";
import { ChunkCache } from "../../dist/src/cache/chunk-cache.js";

const [dir, max, seed, count, size] = process.argv.slice(2);
const cache = await ChunkCache.open({ path: dir, maxBytes: Number(max) });
for (let i = 0; i < Number(count); i++) {
  const bytes = randomBytes(Number(size));
  const id = Buffer.alloc(32);
  id.write(`${seed}-${i}`);
  const chunk = { id, length: bytes.length };
  if (cache.reserveFill(bytes.length)) await cache.fill([chunk], bytes, bytes.length);
}
await cache.close();
process.stdout.write("done\n");
