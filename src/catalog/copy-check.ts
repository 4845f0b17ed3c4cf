/**
 * The check after a whole-catalog copy (catalog-copy.ts): that the target holds what the source
 * does, record for record, before anyone is told to switch over. Three checks, each of
 * everything (no sampling):
 *
 * 1. counts: per kind, what the source's database counts, what was copied, and what the
 *    target's database counts are equal (a record lost or doubled, or a source written to
 *    during the copy, shows here);
 * 2. every item: both catalogs exported again and walked side by side, each item compared in a
 *    canonical form (the copy's own path, read back);
 * 3. through the Catalog interface the service reads with (an independent path through each
 *    implementation's readers): per store every chunk record (scanChunks), pack and trash
 *    entry; every object record; every image record (scanImages by id, getImages), each
 *    image's members and tasks, every task, and the usage of every owner of an image; every
 *    metadefs namespace and resource type.
 *
 * Condemned chunks, manifests and meta keys have no reader in the interface: check 2 covers
 * them.
 */
import { TesseraError } from "../errors.js";
import type { Catalog } from "./catalog.js";
import { type CatalogCopy, type CatalogItem, ITEM_KINDS, type KindCounts } from "./catalog-copy.js";

export type Copyable = Catalog & CatalogCopy;

/** Progress: `done` of `total` in phase `label`. */
export type OnProgress = (label: string, done: number, total: number) => void;

export class CopyMismatchError extends TesseraError {
  constructor(what: string) {
    super("catalog_copy_mismatch", `the copy differs from its source: ${what}`);
  }
}

export interface CheckReport {
  /** Per kind: equal in the source, in the copy as made, and in the target. */
  counts: KindCounts;
  /** Items compared in check 2 (every item of both exports). */
  itemsCompared: number;
  /** What check 3 compared, through the Catalog interface. */
  viaInterface: {
    stores: string[];
    chunks: number;
    packs: number;
    trash: number;
    objects: number;
    images: number;
    members: number;
    tasks: number;
    namespaces: number;
    resourceTypes: number;
    owners: number;
  };
}

/**
 * A value as one string, whatever implementation read it: keys sorted, undefined left out
 * (JSON and msgpack keep absent properties differently), bytes as hex, bigints as decimals.
 */
export function canon(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "bigint") return `${v}n`;
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return `x${Buffer.from(v).toString("hex")}`;
  if (Array.isArray(v)) return `[${v.map(canon).join(",")}]`;
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canon(o[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/** An item's kind, store and key, for a message. */
export function describe(item: CatalogItem): string {
  const where = "store" in item ? ` in store ${item.store}` : "";
  const key = (() => {
    switch (item.kind) {
      case "meta":
        return item.key;
      case "trash":
        return item.name;
      case "image":
        return item.rec.id;
      case "member":
        return `${item.member.image_id}/${item.member.member_id}`;
      case "task":
        return item.task.id;
      case "usage":
        return `owner "${item.owner}"`;
      case "namespace":
        return item.ns.namespace;
      case "resource_type":
        return item.rt.name;
      default:
        return item.id.toString("hex");
    }
  })();
  return `${item.kind}${where} ${key}`;
}

const cut = (s: string) => (s.length > 300 ? `${s.slice(0, 300)}…` : s);

/**
 * Walks `a` (the source's) and `b` (the target's) side by side; throws at the first pair
 * whose canonical forms differ, or where one ends first. Returns how many pairs matched.
 */
async function walkPair<T>(
  what: string,
  a: AsyncIterable<T>,
  b: AsyncIterable<T>,
  name: (x: T) => string,
  onStep?: () => void,
): Promise<number> {
  const ia = a[Symbol.asyncIterator]();
  const ib = b[Symbol.asyncIterator]();
  let n = 0;
  try {
    for (;;) {
      const [x, y] = await Promise.all([ia.next(), ib.next()]);
      if (x.done && y.done) return n;
      if (x.done) throw new CopyMismatchError(`${what}: the target has more, first ${name(y.value as T)}`);
      if (y.done) throw new CopyMismatchError(`${what}: the target lacks ${name(x.value)}`);
      const [cx, cy] = [canon(x.value), canon(y.value)];
      if (cx !== cy) {
        throw new CopyMismatchError(
          `${what}: ${name(x.value)} is ${cut(cx)} in the source, ${cut(cy)} in the target`,
        );
      }
      n++;
      onStep?.();
    }
  } finally {
    await Promise.all([ia.return?.(), ib.return?.()]);
  }
}

async function* toAsync<T>(xs: Iterable<T>): AsyncGenerator<T> {
  yield* xs;
}

function sum(c: KindCounts): number {
  return ITEM_KINDS.reduce((n, k) => n + c[k], 0);
}

/** Check 1: the counts of source, copy and target agree kind by kind. */
async function checkCounts(source: Copyable, target: Copyable, copied: KindCounts): Promise<KindCounts> {
  const [inSource, inTarget] = await Promise.all([source.countAll(), target.countAll()]);
  for (const k of ITEM_KINDS) {
    if (inSource[k] !== copied[k] || inTarget[k] !== copied[k]) {
      throw new CopyMismatchError(
        `${k} records: ${inSource[k]} in the source, ${copied[k]} copied, ${inTarget[k]} in the target`,
      );
    }
  }
  return inTarget;
}

/** Check 3, images: every record, its members and tasks; the owners it names. */
async function checkImages(source: Copyable, target: Copyable, step: () => void) {
  const n = { images: 0, members: 0, tasks: 0, owners: 0 };
  const owners = new Set<string | null>();
  const ids = (c: Catalog) => c.records.scanImages("id", "asc");
  let page: string[] = [];
  const flush = async () => {
    const [a, b] = await Promise.all([source.records.getImages(page), target.records.getImages(page)]);
    n.images += await walkPair("images", toAsync(a), toAsync(b), (r) => `image ${r?.id}`, step);
    for (const r of a) owners.add(r?.owner ?? null);
    for (const id of page) {
      const [ma, mb] = await Promise.all([source.records.listMembers(id), target.records.listMembers(id)]);
      n.members += await walkPair(
        `members of ${id}`,
        toAsync(ma),
        toAsync(mb),
        (m) => `member ${m.member_id}`,
      );
      const [ta, tb] = await Promise.all([source.records.tasksOfImage(id), target.records.tasksOfImage(id)]);
      await walkPair(`tasks of ${id}`, toAsync(ta), toAsync(tb), (t) => `task ${t.id}`);
    }
    page = [];
  };
  await walkPair(
    "image ids",
    ids(source),
    ids(target),
    (e) => `image ${e.id}`,
    () => {},
  );
  for await (const { id } of ids(source)) {
    page.push(id);
    if (page.length >= 500) await flush();
  }
  await flush();
  const [ta, tb] = await Promise.all([source.records.listTasks(), target.records.listTasks()]);
  n.tasks = await walkPair("tasks", toAsync(ta), toAsync(tb), (t) => `task ${t.id}`);
  for (const owner of owners) {
    const [ua, ub] = await Promise.all([source.records.ownerUsage(owner), target.records.ownerUsage(owner)]);
    n.owners += await walkPair("usage", toAsync([ua]), toAsync([ub]), () => `the usage of owner ${owner}`);
  }
  return n;
}

/**
 * Checks that `target` holds what `source` does (module comment); `copied`: the counts the
 * import reported. Throws CopyMismatchError at the first difference.
 */
export async function checkCopy(
  source: Copyable,
  target: Copyable,
  copied: KindCounts,
  onProgress?: OnProgress,
): Promise<CheckReport> {
  const counts = await checkCounts(source, target, copied);
  const total = sum(counts);
  let done = 0;
  const step = (label: string, of: number) => () => {
    if (++done % 1000 === 0 || done === of) onProgress?.(label, done, of);
  };
  const itemsCompared = await walkPair(
    "records",
    source.exportAll(),
    target.exportAll(),
    describe,
    step("check records", total),
  );

  const [stores, targetStores] = await Promise.all([source.storeNames(), target.storeNames()]);
  if (canon(stores) !== canon(targetStores)) {
    throw new CopyMismatchError(
      `stores: ${stores.join(", ")} in the source, ${targetStores.join(", ")} in the target`,
    );
  }
  done = 0;
  const of = counts.chunk + counts.pack + counts.trash + counts.object + counts.image;
  const tick = step("check index", of);
  const via = {
    stores,
    chunks: 0,
    packs: 0,
    trash: 0,
    objects: 0,
    images: 0,
    members: 0,
    tasks: 0,
    owners: 0,
    namespaces: 0,
    resourceTypes: 0,
  };
  for (const name of stores) {
    const [a, b] = [source.chunkIndex(name), target.chunkIndex(name)];
    const hex = (e: { id: Buffer }) => `${e.id.toString("hex")} in store ${name}`;
    via.chunks += await walkPair("chunks", a.scanChunks(), b.scanChunks(), (e) => `chunk ${hex(e)}`, tick);
    via.packs += await walkPair("packs", a.scanPacks(), b.scanPacks(), (e) => `pack ${hex(e)}`, tick);
    via.trash += await walkPair(
      "trash",
      a.scanTrash(),
      b.scanTrash(),
      (e) => `trash ${e.name} in ${name}`,
      tick,
    );
  }
  via.objects = await walkPair(
    "objects",
    source.scanObjects(),
    target.scanObjects(),
    (e) => `object ${e.id.toString("hex")}`,
    tick,
  );
  Object.assign(via, await checkImages(source, target, tick));
  const [na, nb] = await Promise.all([source.records.listNamespaces(), target.records.listNamespaces()]);
  via.namespaces = await walkPair(
    "namespaces",
    toAsync(na),
    toAsync(nb),
    (ns) => `namespace ${ns.namespace}`,
  );
  const [ra, rb] = await Promise.all([
    source.records.listResourceTypes(),
    target.records.listResourceTypes(),
  ]);
  via.resourceTypes = await walkPair(
    "resource types",
    toAsync(ra),
    toAsync(rb),
    (rt) => `resource type ${rt.name}`,
  );
  return { counts, itemsCompared, viaInterface: via };
}
