/**
 * Metadata definitions (Glance's metadefs): the namespaces of property definitions that
 * dashboards offer for images, flavors and volumes, and the resource types they apply to.
 *
 * A namespace is one record holding its objects, properties, tags and resource type
 * associations: they are only ever read and written through their namespace, a namespace is
 * small (Glance's largest shipped one is 30 KB), and one record makes every change to it, a
 * rename included, a single write in the caller's unit of work.
 */
export const METADEF_VISIBILITIES = ["public", "private"] as const;
export type MetadefVisibility = (typeof METADEF_VISIBILITIES)[number];

/**
 * A property definition as a client wrote it (type, title, enum, items, ...), without its
 * name: the key it is kept under. Free-form within the property schema the API checks.
 */
export type MetadefProperty = Record<string, unknown>;

export interface MetadefObject {
  name: string;
  description?: string;
  required?: string[];
  /** By name, in the order they were defined. */
  properties: Record<string, MetadefProperty>;
  created_at: string;
  /** Absent until the object is changed, as Glance's column is null until then. */
  updated_at?: string;
}

export interface MetadefTag {
  name: string;
  created_at: string;
  updated_at?: string;
}

/** That a namespace applies to a resource type, and the prefix its properties take there. */
export interface MetadefAssociation {
  name: string;
  prefix?: string;
  properties_target?: string;
  created_at: string;
  updated_at?: string;
}

export interface MetadefNamespaceRecord {
  namespace: string;
  display_name?: string;
  description?: string;
  visibility: MetadefVisibility;
  protected: boolean;
  /** The project that owns it (null: made by a caller without one). */
  owner: string | null;
  created_at: string;
  updated_at?: string;
  resource_type_associations: MetadefAssociation[];
  /** By name, in the order they were defined. */
  properties: Record<string, MetadefProperty>;
  objects: MetadefObject[];
  tags: MetadefTag[];
}

export interface MetadefResourceTypeRecord {
  name: string;
  protected: boolean;
  created_at: string;
  updated_at?: string;
}
