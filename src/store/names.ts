/** Object names of the store's contents on a backend, with a two-hex-digit fan-out. */

export const STORE_FORMAT_OBJECT = "tessera-store.json";

export function packName(packIdHex: string): string {
  return `packs/${packIdHex.slice(0, 2)}/${packIdHex}.pack`;
}

export function manifestName(manifestIdHex: string): string {
  return `manifests/${manifestIdHex.slice(0, 2)}/${manifestIdHex}`;
}

/** The pack id in a pack object's name, or undefined if the name is not a pack's. */
export function packIdFromName(name: string): string | undefined {
  return /^packs\/[0-9a-f]{2}\/([0-9a-f]{32})\.pack$/.exec(name)?.[1];
}

export function manifestIdFromName(name: string): string | undefined {
  return /^manifests\/[0-9a-f]{2}\/([0-9a-f]{64})$/.exec(name)?.[1];
}
