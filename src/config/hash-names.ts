/**
 * Glance reports os_hash_algo with Python's hashlib names; Node's crypto spells some of them
 * differently.
 */

const NODE_NAMES: Record<string, string> = {
  sha3_224: "sha3-224",
  sha3_256: "sha3-256",
  sha3_384: "sha3-384",
  sha3_512: "sha3-512",
  blake2b: "blake2b512",
  blake2s: "blake2s256",
};

/** The Node crypto name of a hashlib name (names both spell alike come back as they are). */
export function nodeHashName(hashlib: string): string {
  return NODE_NAMES[hashlib] ?? hashlib;
}
