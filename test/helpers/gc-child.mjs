// A garbage collector in a process of its own, over a data directory another process writes to
// (test/engine/gc-cross-process.test.ts): the shipped engine (dist/), grace 0.
//   node gc-child.mjs DIR once [ignore-leases]   one collection, its report on stdout
//   node gc-child.mjs DIR loop [ignore-leases]   collections back to back until stdin closes
import { Engine } from "../../dist/src/engine/engine.js";

const [dir, mode, flag] = process.argv.slice(2);
const engine = await Engine.openDir(dir, { durable: false, packSize: 1024 * 1024 });
const options = { graceSeconds: 0, unsafeIgnoreLeases: flag === "ignore-leases" };
if (mode === "once") {
  process.stdout.write(`${JSON.stringify(await engine.gc(options))}\n`);
} else {
  let stop = false;
  process.stdin.on("end", () => {
    stop = true;
  });
  process.stdin.resume();
  let runs = 0;
  while (!stop) {
    await engine.gc(options);
    runs++;
    await new Promise((r) => setTimeout(r, 5));
  }
  process.stdout.write(`${JSON.stringify({ runs })}\n`);
}
await engine.close();
