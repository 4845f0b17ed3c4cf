/**
 * The shape Glance gives its list schemas (images, members, tasks): the items under the list's
 * own name, the `schema` link, and the paging links for a list that pages.
 */
export function listSchema(name: string, items: object, paged = false): object {
  return {
    name,
    properties: {
      [name]: { type: "array", items },
      ...(paged ? { first: { type: "string" }, next: { type: "string" } } : {}),
      schema: { type: "string" },
    },
    links: [
      ...(paged
        ? [
            { rel: "first", href: "{first}" },
            { rel: "next", href: "{next}" },
          ]
        : []),
      { rel: "describedby", href: "{schema}" },
    ],
  };
}
