/**
 * Chunk ids: BLAKE3-256 of the uncompressed chunk bytes.
 *
 * The native `@napi-rs/blake-hash` is the fastest implementation measured here (see
 * docs/benchmarks.md); it ships prebuilt per platform as optional packages, so on a platform
 * without one the WebAssembly build from `hash-wasm` takes over. Both give identical ids.
 */
import { createRequire } from "node:module";
import { createBLAKE3 } from "hash-wasm";

export const CHUNK_ID_ALGORITHM = "blake3-256";
export const CHUNK_ID_BYTES = 32;

type HashFn = (data: Uint8Array) => Buffer;

function loadNative(): HashFn | undefined {
  if (process.env.TESSERA_BLAKE3 === "wasm") return undefined;
  try {
    const mod = createRequire(import.meta.url)("@napi-rs/blake-hash") as { blake3(d: Uint8Array): Buffer };
    return (d) => mod.blake3(d);
  } catch {
    return undefined;
  }
}

async function loadWasm(): Promise<HashFn> {
  const h = await createBLAKE3();
  return (d) => {
    h.init();
    h.update(d);
    return Buffer.from(h.digest("binary"));
  };
}

const native = loadNative();
const wasm = await loadWasm();

/** Which implementation computes chunk ids in this process. */
export const chunkIdImplementation: "native" | "wasm" = native ? "native" : "wasm";

/** BLAKE3-256 of `data`: the id of a chunk, a manifest or a pack trailer. */
export const chunkId: HashFn = native ?? wasm;

/** The portable implementation, exported so tests and benches can compare the two. */
export const chunkIdWasm: HashFn = wasm;
