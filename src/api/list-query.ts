/**
 * GET /v2/images query parameters → an engine ListQuery, with Glance's validation and
 * messages, and the `first`/`next` links that keep the caller's query.
 *
 * Filters: name, status, visibility, owner, tag (repeatable, all must match), disk_format,
 * container_format, protected, os_hidden, size_min, size_max, size, min_ram, min_disk (exact
 * integers), id, created_at, updated_at, member_status, and any other name as a free-form
 * property (exact match); `changes-since` is refused, as Glance v2 refuses it. Values may carry
 * an operator: `in:a,b`, `eq:`, `neq:`, and for timestamps also `gt:`, `gte:`, `lt:`, `lte:`.
 */
import { IMAGE_SORT_KEYS, type ImageRecord, type ImageSortKey } from "../catalog/image-records.js";
import { BadRequestError } from "../errors.js";
import type { ListQuery, SortSpec } from "../images/images.js";
import { glanceTime } from "./image-view.js";

export interface ListLimits {
  defaultLimit: number;
  maxLimit: number;
}

const OPERATORS = new Set(["eq", "neq", "gt", "gte", "lt", "lte", "in"]);
const STRING_FIELDS = ["name", "status", "owner", "disk_format", "container_format", "id"] as const;
const TIME_FIELDS = ["created_at", "updated_at"] as const;
const CONTROL = new Set(["limit", "marker", "sort", "sort_key", "sort_dir"]);
const VISIBILITIES = new Set(["public", "private", "shared", "community", "all"]);
const MEMBER_STATUSES = new Set(["pending", "accepted", "rejected", "all"]);

type Predicate = (rec: ImageRecord) => boolean;

/** Splits `op:value` as Glance does: an ISO timestamp alone is an `eq`, not an operator. */
function splitOperator(expr: string): { op: string; value: string } {
  const i = expr.indexOf(":");
  if (i < 0 || /^\d{4}-\d{2}-\d{2}T/.test(expr)) return { op: "eq", value: expr };
  return { op: expr.slice(0, i), value: expr.slice(i + 1) };
}

function stringFilter(
  name: string,
  expr: string,
  get: (r: ImageRecord) => string | null | undefined,
): Predicate {
  const { op, value } = splitOperator(expr);
  if (!OPERATORS.has(op)) throw new BadRequestError(`Unable to filter by unknown operator '${op}'.`);
  switch (op) {
    case "eq":
      return (r) => get(r) === value;
    case "neq":
      return (r) => get(r) !== value;
    case "in": {
      const set = new Set(value.split(",").map((v) => v.replace(/^"|"$/g, "")));
      return (r) => set.has(get(r) as string);
    }
    default:
      throw new BadRequestError(`Unable to filter on ${name} with operator '${op}'.`);
  }
}

function timeFilter(name: (typeof TIME_FIELDS)[number], expr: string): Predicate {
  const { op, value } = splitOperator(expr);
  if (!OPERATORS.has(op) || op === "in")
    throw new BadRequestError(`Unable to filter by unknown operator '${op}'.`);
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new BadRequestError(`Unable to parse datetime '${value}'.`);
  // Compare at the second, as clients see the timestamps.
  const at = (r: ImageRecord) => Date.parse(glanceTime(r[name]));
  const cmp: Record<string, (a: number) => boolean> = {
    eq: (a) => a === t,
    neq: (a) => a !== t,
    gt: (a) => a > t,
    gte: (a) => a >= t,
    lt: (a) => a < t,
    lte: (a) => a <= t,
  };
  const f = cmp[op];
  return (r) => f(at(r));
}

function boolParam(name: string, v: string): boolean {
  const s = v.toLowerCase();
  if (s === "true" || s === "1" || s === "yes" || s === "on") return true;
  if (s === "false" || s === "0" || s === "no" || s === "off") return false;
  throw new BadRequestError(`Invalid value '${v}' for option ${name}: expected a boolean.`);
}

function intParam(name: string, v: string): number {
  if (!/^-?\d+$/.test(v)) throw new BadRequestError(`${name} param must be an integer`);
  return Number(v);
}

function sortSpecs(q: URLSearchParams): SortSpec[] {
  const checkKey = (k: string): ImageSortKey => {
    if (!(IMAGE_SORT_KEYS as readonly string[]).includes(k)) {
      throw new BadRequestError(
        `Invalid sort key: ${k}. It must be one of the following: ${IMAGE_SORT_KEYS.join(", ")}.`,
      );
    }
    return k as ImageSortKey;
  };
  const checkDir = (d: string): "asc" | "desc" => {
    if (d !== "asc" && d !== "desc") throw new BadRequestError(`Invalid sort direction: ${d}`);
    return d;
  };
  const sort = q.get("sort");
  if (sort !== null) {
    if (q.has("sort_key") || q.has("sort_dir")) {
      throw new BadRequestError("The 'sort' param cannot be used together with 'sort_key' or 'sort_dir'.");
    }
    return sort.split(",").map((part) => {
      const [k, d, extra] = part.trim().split(":");
      if (extra !== undefined) throw new BadRequestError(`Invalid sort value: ${part}`);
      return { key: checkKey(k), dir: d === undefined ? "desc" : checkDir(d) };
    });
  }
  const keys = q.getAll("sort_key").map(checkKey);
  const dirs = q.getAll("sort_dir").map(checkDir);
  if (dirs.length > Math.max(keys.length, 1)) {
    throw new BadRequestError("The number of sort_dir values must not exceed the number of sort_key values.");
  }
  if (keys.length === 0) return [{ key: "created_at", dir: dirs[0] ?? "desc" }];
  return keys.map((key, i) => ({ key, dir: dirs.length === 1 ? dirs[0] : (dirs[i] ?? "desc") }));
}

/**
 * The query as the engine runs it, plus the two filters that depend on who asks (visibility
 * and member_status: the access policy's `listable` applies them).
 */
export interface ParsedListQuery extends ListQuery {
  visibility?: string;
  memberStatus: string;
}

export function parseListQuery(q: URLSearchParams, limits: ListLimits): ParsedListQuery {
  const preds: Predicate[] = [];
  let limit = limits.defaultLimit;
  const rawLimit = q.get("limit");
  if (rawLimit !== null) {
    limit = intParam("limit", rawLimit);
    if (limit < 0) throw new BadRequestError("limit param must be positive");
    limit = Math.min(limit, limits.maxLimit);
  }
  const marker = q.get("marker") ?? undefined;
  const sort = sortSpecs(q);

  const visibility = q.get("visibility");
  if (visibility !== null && !VISIBILITIES.has(visibility)) {
    throw new BadRequestError(`Invalid visibility value: ${visibility}`);
  }
  const memberStatus = q.get("member_status");
  if (memberStatus !== null && !MEMBER_STATUSES.has(memberStatus)) {
    throw new BadRequestError(`Invalid status value: ${memberStatus}`);
  }
  const hidden = q.get("os_hidden");
  const showHidden = hidden === null ? false : boolParam("os_hidden", hidden);
  preds.push((r) => r.os_hidden === showHidden);
  const prot = q.get("protected");
  if (prot !== null) {
    const want = boolParam("protected", prot);
    preds.push((r) => r.protected === want);
  }
  for (const name of ["size_min", "size_max"] as const) {
    const v = q.get(name);
    if (v === null) continue;
    const n = intParam(name, v);
    if (n < 0) throw new BadRequestError(`${name} param must be positive`);
    preds.push(
      name === "size_min" ? (r) => r.size !== null && r.size >= n : (r) => r.size !== null && r.size <= n,
    );
  }
  const tags = q.getAll("tag");
  if (tags.length > 0) preds.push((r) => tags.every((t) => r.tags.includes(t)));
  for (const f of STRING_FIELDS) {
    for (const v of q.getAll(f)) preds.push(stringFilter(f, v, (r) => r[f]));
  }
  for (const f of TIME_FIELDS) {
    for (const v of q.getAll(f)) preds.push(timeFilter(f, v));
  }
  const handled = new Set<string>([
    ...CONTROL,
    ...STRING_FIELDS,
    ...TIME_FIELDS,
    "visibility",
    "member_status",
    "os_hidden",
    "protected",
    "size_min",
    "size_max",
    "tag",
  ]);
  for (const key of new Set(q.keys())) {
    if (handled.has(key)) continue;
    if (key === "changes-since") {
      throw new BadRequestError('The "changes-since" filter is no longer available on v2.');
    }
    // Columns of Glance's images table: an exact match on the number (tempest's
    // test_list_images_param_size lists by the size of an image it uploaded).
    if (key === "min_ram" || key === "min_disk" || key === "size") {
      for (const v of q.getAll(key)) {
        const n = intParam(key, v);
        preds.push((r) => r[key] === n);
      }
      continue;
    }
    for (const v of q.getAll(key)) preds.push(stringFilter(key, v, (r) => r.properties[key]));
  }
  return {
    sort,
    limit,
    marker,
    match: (r) => preds.every((p) => p(r)),
    visibility: visibility ?? undefined,
    memberStatus: memberStatus ?? "accepted",
  };
}

/** The `first` and `next` links: the caller's query, re-encoded, without (then with) a marker. */
export function listLinks(
  q: URLSearchParams,
  page: ImageRecord[],
  limit: number,
): { first: string; next?: string } {
  const base = new URLSearchParams(q);
  base.delete("marker");
  const qs = base.toString();
  const first = qs ? `/v2/images?${qs}` : "/v2/images";
  if (page.length === 0 || page.length < limit) return { first };
  const last = page[page.length - 1].id;
  const next = `/v2/images?${qs ? `${qs}&` : ""}marker=${encodeURIComponent(last)}`;
  return { first, next };
}
