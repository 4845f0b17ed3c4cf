/**
 * What the metadata definitions service asks of the caller's identity: whether it sees a
 * namespace, whether it may act, and the project it creates for. The API builds one per
 * request from the policy (auth/metadef-policy.ts); the service applies it to the current
 * record inside each unit of work.
 */
import type { MetadefNamespaceRecord } from "../catalog/metadef-records.js";

/** Glance's metadefs policy actions (glance/policies/metadef.py). */
export type MetadefAction =
  | "get_metadef_namespace"
  | "get_metadef_namespaces"
  | "add_metadef_namespace"
  | "modify_metadef_namespace"
  | "delete_metadef_namespace"
  | "get_metadef_object"
  | "get_metadef_objects"
  | "add_metadef_object"
  | "modify_metadef_object"
  | "delete_metadef_object"
  | "get_metadef_property"
  | "get_metadef_properties"
  | "add_metadef_property"
  | "modify_metadef_property"
  | "remove_metadef_property"
  | "get_metadef_tag"
  | "get_metadef_tags"
  | "add_metadef_tag"
  | "add_metadef_tags"
  | "modify_metadef_tag"
  | "delete_metadef_tag"
  | "delete_metadef_tags"
  | "list_metadef_resource_types"
  | "get_metadef_resource_type"
  | "add_metadef_resource_type_association"
  | "remove_metadef_resource_type_association";

export interface MetadefAccess {
  /** Whether the namespace exists for the caller at all (else: 404, as if it did not). */
  sees(ns: MetadefNamespaceRecord): boolean;
  /** Throws (403) unless the caller may do `action`. */
  check(action: MetadefAction): void;
  /** The project that owns what the caller creates (null: none). */
  project: string | null;
}

/** Local tools' access (the `tessera metadefs` commands): sees and may do everything. */
export const OPERATOR: MetadefAccess = { sees: () => true, check: () => {}, project: null };
