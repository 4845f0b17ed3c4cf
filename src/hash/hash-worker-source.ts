/**
 * The code of a whole-image hash worker. It is a string, run with `new Worker(src, { eval: true })`,
 * so that the same code runs from TypeScript sources under test and from the compiled build.
 *
 * One worker computes one algorithm for every stream of its lane (a hash state per stream, a few
 * hundred bytes each). Protocol (all messages are small; the bytes are in shared slots):
 *   main → worker { t: "slot", i, buf }         slot i is this SharedArrayBuffer from now on
 *   main → worker { t: "begin", s, algo }       start stream s
 *   main → worker { t: "data", s, i, len }      hash slot i[0, len) into s; answered { t: "done", i }
 *   main → worker { t: "end", s }               answered { t: "digest", s, hex }
 *   main → worker { t: "drop", s }              forget s (abandoned)
 * A worker handles its messages in order, so a stream's data is hashed in the order it was sent.
 */
export const HASH_WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const slots = [];
const streams = new Map();
parentPort.on("message", (m) => {
  if (m.t === "slot") {
    slots[m.i] = new Uint8Array(m.buf);
  } else if (m.t === "begin") {
    streams.set(m.s, createHash(m.algo));
  } else if (m.t === "data") {
    const h = streams.get(m.s);
    if (h) h.update(slots[m.i].subarray(0, m.len));
    parentPort.postMessage({ t: "done", i: m.i });
  } else if (m.t === "end") {
    const h = streams.get(m.s);
    streams.delete(m.s);
    // An unknown stream (ended twice, or dropped) gets an empty answer, not this worker's end.
    parentPort.postMessage({ t: "digest", s: m.s, hex: h ? h.digest("hex") : "" });
  } else if (m.t === "drop") {
    streams.delete(m.s);
  }
});
`;
