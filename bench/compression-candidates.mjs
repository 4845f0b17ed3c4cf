// Compression candidates for per-chunk compression (issue 5), measured on real chunks: which
// codec, from the registry or Node itself, to build on. Not part of `npm run bench`: the
// candidates are not dependencies. To run it:
//
//   npm install --no-save zstd-napi @toondepauw/node-zstd @bokuweb/zstd-wasm lz4-napi
//   node bench/compression-candidates.mjs corpus/base.raw
//
// It takes the first 96 MiB of non-zero 64 KiB chunks of the file (the engine never stores
// all-zero chunks; 64 KiB is the chunker's average) and random data of the same size, then
// compresses and decompresses each chunk on one thread. A candidate that does not install is
// listed as not measured.
import { randomFillSync } from "node:crypto";
import { openSync, readSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import zlib from "node:zlib";

const require = createRequire(import.meta.url);
const SAMPLE = 96 * 1024 * 1024;
const CHUNK = 64 * 1024;

function realChunks(file) {
  const fd = openSync(file, "r");
  const size = statSync(file).size;
  const block = Buffer.alloc(1 << 20);
  const chunks = [];
  let kept = 0;
  for (let pos = 0; pos < size && kept < SAMPLE; pos += block.length) {
    readSync(fd, block, 0, block.length, pos);
    for (let at = 0; at < block.length; at += CHUNK) {
      const c = block.subarray(at, at + CHUNK);
      if (c.some((b) => b !== 0)) {
        chunks.push(Buffer.from(c));
        kept += c.length;
      }
    }
  }
  return chunks;
}

function randomChunks() {
  return Array.from({ length: SAMPLE / CHUNK }, () => randomFillSync(Buffer.alloc(CHUNK)));
}

async function candidates() {
  const out = {};
  const add = async (name, load) => {
    try {
      out[name] = await load();
    } catch (e) {
      out[name] = `not measured (${e.code ?? e.message})`;
    }
  };
  await add("zstd-napi L1 (native, built by node-gyp)", () => {
    const z = require("zstd-napi");
    return [(c) => z.compress(c, { compressionLevel: 1 }), (c) => z.decompress(c)];
  });
  await add("zstd-napi L3", () => {
    const z = require("zstd-napi");
    return [(c) => z.compress(c, { compressionLevel: 3 }), (c) => z.decompress(c)];
  });
  await add("@toondepauw/node-zstd L1 (napi-rs, prebuilt)", () => {
    const z = require("@toondepauw/node-zstd");
    const e = new z.Encoder(1);
    const d = new z.Decoder();
    return [(c) => e.encodeSync(c), (c) => d.decodeSync(c)];
  });
  await add("@toondepauw/node-zstd L3", () => {
    const z = require("@toondepauw/node-zstd");
    const e = new z.Encoder(3);
    const d = new z.Decoder();
    return [(c) => e.encodeSync(c), (c) => d.decodeSync(c)];
  });
  await add("@bokuweb/zstd-wasm L3 (wasm)", async () => {
    const z = await import("@bokuweb/zstd-wasm");
    await z.init();
    return [(c) => z.compress(c, 3), (c) => z.decompress(c)];
  });
  await add("lz4-napi (napi-rs, prebuilt)", () => {
    const z = require("lz4-napi");
    return [(c) => z.compressSync(c), (c) => z.uncompressSync(c)];
  });
  out["node:zlib brotli q1 (built in)"] = [
    (c) => zlib.brotliCompressSync(c, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1 } }),
    (c) => zlib.brotliDecompressSync(c),
  ];
  out["node:zlib deflate L1 (built in)"] = [
    (c) => zlib.deflateRawSync(c, { level: 1 }),
    (c) => zlib.inflateRawSync(c),
  ];
  return out;
}

function measure(chunks, [compress, decompress]) {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  let stored = 0;
  const packed = [];
  const t0 = performance.now();
  for (const c of chunks) {
    const z = compress(c);
    stored += Math.min(z.length, c.length); // chunks that do not shrink are stored raw
    packed.push(z);
  }
  const t1 = performance.now();
  for (const z of packed) decompress(z);
  const t2 = performance.now();
  const mbps = (ms) => Math.round(total / 1e6 / (ms / 1e3));
  return {
    ratio: Math.round((total / stored) * 100) / 100,
    compressMBps: mbps(t1 - t0),
    decompressMBps: mbps(t2 - t1),
  };
}

const file = process.argv[2] ?? "corpus/base.raw";
const sets = { [file]: realChunks(file), random: randomChunks() };
const results = {};
for (const [name, codec] of Object.entries(await candidates())) {
  results[name] = typeof codec === "string" ? codec : {};
  if (typeof codec === "string") {
    console.error(`${name}: ${codec}`);
    continue;
  }
  for (const [set, chunks] of Object.entries(sets)) {
    const r = measure(chunks, codec);
    results[name][set] = r;
    console.error(
      `${name.padEnd(46)} ${set.padEnd(18)} ratio ${r.ratio}, compress ${r.compressMBps} MB/s, decompress ${r.decompressMBps} MB/s`,
    );
  }
}
process.stdout.write(`${JSON.stringify(results)}\n`);
