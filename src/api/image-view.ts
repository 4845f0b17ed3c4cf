/**
 * The Glance JSON shape of an image record: free-form properties first, then the core
 * attributes in the order Glance writes them, timestamps to the second with a Z.
 */
import type { ImageRecord } from "../catalog/image-records.js";

export function glanceTime(iso: string): string {
  return `${iso.slice(0, 19)}Z`;
}

export function imageView(rec: ImageRecord): Record<string, unknown> {
  return {
    ...rec.properties,
    name: rec.name,
    disk_format: rec.disk_format,
    container_format: rec.container_format,
    visibility: rec.visibility,
    size: rec.size,
    virtual_size: rec.virtual_size,
    status: rec.status,
    checksum: rec.checksum,
    protected: rec.protected,
    min_ram: rec.min_ram,
    min_disk: rec.min_disk,
    owner: rec.owner,
    os_hidden: rec.os_hidden,
    os_hash_algo: rec.os_hash_algo,
    os_hash_value: rec.os_hash_value,
    id: rec.id,
    created_at: glanceTime(rec.created_at),
    updated_at: glanceTime(rec.updated_at),
    tags: rec.tags,
    self: `/v2/images/${rec.id}`,
    file: `/v2/images/${rec.id}/file`,
    schema: "/v2/schemas/image",
    // Multi-store Glance lists the stores holding the data, last, once there are any.
    ...(rec.stores.length > 0 ? { stores: rec.stores.join(",") } : {}),
  };
}
