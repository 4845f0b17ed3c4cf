/**
 * The metadata definitions' JSON schemas, served under /v2/schemas/metadefs/ and used to check
 * request bodies (metadef-validate.ts compiles these very objects). Built as Glance builds them
 * (glance/api/v2/metadef_*.py get_schema) from shared parts; each equals, key for key, the
 * document the real Glance Zed serves (docs/reference/glance-zed/v2_schemas_metadefs_*.json,
 * test/api/metadef-schemas.test.ts).
 */
const TYPES = ["array", "boolean", "integer", "number", "object", "string", null];

/** What a property definition may say (a property's schema, JSON Schema's own words). */
const PROPERTY_FIELDS = {
  name: { type: "string", maxLength: 80 },
  title: { type: "string" },
  description: { type: "string" },
  operators: { type: "array", items: { type: "string" } },
  type: { type: "string", enum: TYPES },
  required: { $ref: "#/definitions/stringArray" },
  minimum: { type: "number" },
  maximum: { type: "number" },
  maxLength: { $ref: "#/definitions/positiveInteger" },
  minLength: { $ref: "#/definitions/positiveIntegerDefault0" },
  pattern: { type: "string", format: "regex" },
  enum: { type: "array" },
  readonly: { type: "boolean" },
  default: {},
  items: { type: "object", properties: { type: { type: "string", enum: TYPES }, enum: { type: "array" } } },
  maxItems: { $ref: "#/definitions/positiveInteger" },
  minItems: { $ref: "#/definitions/positiveIntegerDefault0" },
  uniqueItems: { type: "boolean", default: false },
  additionalItems: { type: "boolean" },
};

/** The definitions the property fields refer to; a lone property's string arrays are never empty. */
function definitions(nonEmptyArrays: boolean) {
  return {
    positiveInteger: { type: "integer", minimum: 0 },
    positiveIntegerDefault0: { allOf: [{ $ref: "#/definitions/positiveInteger" }, { default: 0 }] },
    stringArray: {
      type: "array",
      items: { type: "string" },
      ...(nonEmptyArrays ? { minItems: 1 } : {}),
      uniqueItems: true,
    },
  };
}

const WITH_PROPERTY_MAP = {
  ...definitions(false),
  property: {
    type: "object",
    additionalProperties: { type: "object", required: ["title", "type"], properties: PROPERTY_FIELDS },
  },
};

function stamps(what: string) {
  return {
    created_at: {
      type: "string",
      readOnly: true,
      description: `Date and time of ${what}`,
      format: "date-time",
    },
    updated_at: {
      type: "string",
      readOnly: true,
      description: `Date and time of the last ${what} modification`,
      format: "date-time",
    },
  };
}

const LINKS = { schema: { readOnly: true, type: "string" }, self: { readOnly: true, type: "string" } };

const NAMESPACE_FIELDS = {
  namespace: { type: "string", description: "The unique namespace text.", maxLength: 80 },
  display_name: {
    type: "string",
    description: "The user friendly name for the namespace. Used by UI if available.",
    maxLength: 80,
  },
  description: {
    type: "string",
    description: "Provides a user friendly description of the namespace.",
    maxLength: 500,
  },
  visibility: {
    type: "string",
    description: "Scope of namespace accessibility.",
    enum: ["public", "private"],
  },
  protected: { type: "boolean", description: "If true, namespace will not be deletable." },
  owner: { type: "string", description: "Owner of the namespace.", maxLength: 255 },
  created_at: { ...stamps("").created_at, description: "Date and time of namespace creation" },
  updated_at: { ...stamps("namespace").updated_at },
  ...LINKS,
  resource_type_associations: {
    type: "array",
    items: {
      type: "object",
      properties: {
        name: { type: "string" },
        prefix: { type: "string" },
        properties_target: { type: "string" },
      },
    },
  },
  properties: { $ref: "#/definitions/property" },
  objects: {
    type: "array",
    items: {
      type: "object",
      properties: {
        name: { type: "string" },
        description: { type: "string" },
        required: { $ref: "#/definitions/stringArray" },
        properties: { $ref: "#/definitions/property" },
      },
    },
  },
  tags: { type: "array", items: { type: "object", properties: { name: { type: "string" } } } },
};

const OBJECT_FIELDS = {
  name: { type: "string", maxLength: 80 },
  description: { type: "string" },
  required: { $ref: "#/definitions/stringArray" },
  properties: { $ref: "#/definitions/property" },
  ...LINKS,
  ...stamps("object"),
  created_at: { ...stamps("").created_at, description: "Date and time of object creation" },
};

const TAG_FIELDS = {
  name: { type: "string", maxLength: 80 },
  ...stamps("tag"),
  created_at: { ...stamps("").created_at, description: "Date and time of tag creation" },
};

const ASSOCIATION_FIELDS = {
  name: {
    type: "string",
    description:
      "Resource type names should be aligned with Heat resource types whenever possible: https://docs.openstack.org/heat/latest/template_guide/openstack.html",
    maxLength: 80,
  },
  prefix: {
    type: "string",
    description:
      "Specifies the prefix to use for the given resource type. Any properties in the namespace should be prefixed with this prefix when being applied to the specified resource type. Must include prefix separator (e.g. a colon :).",
    maxLength: 80,
  },
  properties_target: {
    type: "string",
    description:
      "Some resource types allow more than one key / value pair per instance.  For example, Cinder allows user and image metadata on volumes. Only the image properties metadata is evaluated by Nova (scheduling or drivers). This property allows a namespace target to remove the ambiguity.",
    maxLength: 80,
  },
  ...stamps("resource type association"),
  created_at: { ...stamps("").created_at, description: "Date and time of resource type association" },
};

/** One record's schema: its name, its fields, and `required`. */
function item(name: string, properties: object, required: string[]) {
  return { name, properties, additionalProperties: false, required };
}

const LIST_LINKS = [
  { rel: "first", href: "{first}" },
  { rel: "next", href: "{next}" },
  { rel: "describedby", href: "{schema}" },
];

/** A list's schema: `container` holds the items (an array, or a map for properties). */
function list(name: string, container: object, defs?: object) {
  const pages = { first: { type: "string" }, next: { type: "string" }, schema: { type: "string" } };
  return {
    name,
    properties: { [name]: container, ...pages },
    links: LIST_LINKS,
    ...(defs ? { definitions: defs } : {}),
  };
}

function withDefinitions(schema: ReturnType<typeof item>, defs: object) {
  const { required, ...rest } = schema;
  return { ...rest, definitions: defs, required };
}

const namespace = item("namespace", NAMESPACE_FIELDS, ["namespace"]);
const object = item("object", OBJECT_FIELDS, ["name"]);
const tag = item("tag", TAG_FIELDS, ["name"]);
const association = item("resource_type_association", ASSOCIATION_FIELDS, ["name"]);

export const METADEF_SCHEMAS: Record<string, object> = {
  namespace: withDefinitions(namespace, WITH_PROPERTY_MAP),
  namespaces: list("namespaces", { type: "array", items: namespace }, WITH_PROPERTY_MAP),
  object: withDefinitions(object, WITH_PROPERTY_MAP),
  objects: list("objects", { type: "array", items: object }, WITH_PROPERTY_MAP),
  property: withDefinitions(item("property", PROPERTY_FIELDS, ["type", "title", "name"]), definitions(true)),
  properties: list(
    "properties",
    { type: "object", additionalProperties: item("property", PROPERTY_FIELDS, ["type", "title"]) },
    definitions(true),
  ),
  tag,
  tags: list("tags", { type: "array", items: tag }),
  resource_type: association,
  resource_types: {
    ...list("resource_type_associations", { type: "array", items: association }),
  },
};
