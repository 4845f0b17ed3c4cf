/**
 * Uploads and stages cut off by a crash: their images are put back to queued. An upload holds
 * a lease for as long as its bytes flow (streamIn in upload.ts), recorded on the image as
 * `upload_lease`; an image `saving` (or `uploading` with nothing staged yet) whose lease is no
 * longer alive was abandoned: its process died, on this node (seen at once) or on another node
 * sharing the catalog (seen once the lease's time to live has passed). Images written before
 * uploads held leases have none, and count as abandoned, as every such image was at a start.
 *
 * Run at a node's start and on a schedule, by any node: an upload in progress anywhere is never
 * touched, whichever node looks.
 */
import type { Catalog } from "../catalog/catalog.js";
import type { ImageRecord } from "../catalog/image-records.js";

/** Putting records back must work on a full disk: it may use the catalog's reserve. */
const USE_RESERVE = { useReserve: true };

/** Whether `rec` is an upload or stage in progress (or cut off): its data on its way in. */
function inFlight(rec: ImageRecord): boolean {
  return rec.status === "saving" || (rec.status === "uploading" && !rec.staged);
}

/**
 * Puts every abandoned upload's image back to queued; how many it did. `restartedNode`: the
 * caller is that node starting, holding its data directory's lock and serving nothing yet, so
 * every lease of that node is of its earlier life, dead even if a process of it lingers (a
 * worker whose primary was killed takes a moment to notice, and its commit then fails).
 */
export async function requeueAbandoned(
  catalog: Catalog,
  now: () => string,
  restartedNode?: string,
): Promise<number> {
  // Leases are numbered by the catalog's sequence: one begun after this point is newer than
  // `horizon`, and is not judged by the list of live leases read below (it is not on it).
  const horizon = await catalog.transact((tx) => tx.nextSeq(), USE_RESERVE);
  const live = new Set(
    (await catalog.liveLeases())
      .filter((l) => restartedNode === undefined || l.holder.node !== restartedNode)
      .map((l) => l.id),
  );
  const abandoned = (rec: ImageRecord) =>
    inFlight(rec) &&
    (rec.upload_lease == null || (rec.upload_lease < horizon && !live.has(rec.upload_lease)));
  return catalog.transact(async (tx) => {
    // The status index holds them together: no scan of every record. Ids are collected
    // first, since moving a record moves its index entry.
    const seen: string[] = [];
    for (const status of ["saving", "uploading"] as const) {
      for await (const { value, id } of tx.scanImages("status", "asc", status)) {
        if (value !== status) break;
        seen.push(id);
      }
    }
    let n = 0;
    for (const id of seen) {
      const rec = await tx.getImage(id);
      if (!rec || !abandoned(rec)) continue;
      const { upload_lease: _, ...rest } = rec;
      await tx.putImage({ ...rest, status: "queued", updated_at: now() }, rec);
      n++;
    }
    return n;
  }, USE_RESERVE);
}
