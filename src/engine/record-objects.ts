/**
 * Small named objects a layer above the engine keeps on a store's backend beside the packs
 * (the image service's records, so that a catalog lost is not the images lost), under
 * `records/`: a name apart from the packs, manifests and format record, which GC never lists
 * and rebuild-index never reads as chunks. What a record says is its writer's business; the
 * engine only puts, reads, lists and deletes them, each name written once (as every backend
 * object: Swift refuses a second PUT of a name).
 */
import { assertValidName } from "../store/backend.js";
import type { Store } from "./stores.js";

const PREFIX = "records/";

export class RecordObjects {
  constructor(private readonly store: (name?: string) => Store) {}

  /** Puts `body` as record `name` of `store`, durable when it resolves. */
  async put(store: string, name: string, body: Uint8Array): Promise<void> {
    assertValidName(name);
    await this.store(store).backend.put(PREFIX + name, [body]);
  }

  /** The record's bytes, or undefined if it is not there. */
  async get(store: string, name: string): Promise<Buffer | undefined> {
    const { backend } = this.store(store);
    const info = await backend.stat(PREFIX + name);
    return info && (await backend.get(PREFIX + name, 0, info.size));
  }

  /** The names of `store`'s records that start with `prefix`, in no particular order. */
  async *list(store: string, prefix: string): AsyncGenerator<string> {
    for await (const o of this.store(store).backend.list(PREFIX + prefix)) yield o.name.slice(PREFIX.length);
  }

  /** Removes a record; removing one that is not there succeeds. */
  async delete(store: string, name: string): Promise<void> {
    await this.store(store).backend.delete(PREFIX + name);
  }
}
