import type { Manifest } from "../catalog/manifest.js";

/**
 * Decoded manifests of recently read objects. Decoding walks every entry (16k per GiB), which
 * dominated small ranged reads; manifests are immutable, so a decoded one never goes stale.
 * Whether the object still exists is checked in the catalog on every read, not here.
 */
export class ManifestCache {
  private readonly entries = new Map<string, Manifest>();

  constructor(private readonly max = 32) {}

  get(key: string): Manifest | undefined {
    const m = this.entries.get(key);
    if (m) {
      this.entries.delete(key);
      this.entries.set(key, m);
    }
    return m;
  }

  set(key: string, m: Manifest): void {
    this.entries.set(key, m);
    for (const k of this.entries.keys()) {
      if (this.entries.size <= this.max) break;
      this.entries.delete(k);
    }
  }
}
