/**
 * The code of a whole-image hash worker. It is a string, run with `new Worker(src, { eval: true })`,
 * so that the same code runs from TypeScript sources under test and from the compiled build.
 *
 * Protocol (all messages are small; the bytes are in a SharedArrayBuffer ring):
 *   main → worker { t: "begin", algo }          start a new digest
 *   main → worker { t: "data", off, len }       hash ring[off, off+len); answered { t: "done" }
 *   main → worker { t: "end" }                  answered { t: "digest", hex }
 */
export const HASH_WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const ring = new Uint8Array(workerData.ring);
let hash = null;
parentPort.on("message", (m) => {
  if (m.t === "begin") {
    hash = createHash(m.algo);
  } else if (m.t === "data") {
    hash.update(ring.subarray(m.off, m.off + m.len));
    parentPort.postMessage({ t: "done" });
  } else if (m.t === "end") {
    parentPort.postMessage({ t: "digest", hex: hash.digest("hex") });
    hash = null;
  }
});
`;
