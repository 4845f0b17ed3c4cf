/**
 * What the PostgreSQL catalog's functions run their queries on: a pool (a read outside a unit
 * of work: autocommit, sees committed data) or the one client of a unit of work's
 * transaction. Both are node-postgres objects; the functions need only `query`.
 */
import type { QueryConfig, QueryResult, QueryResultRow } from "pg";

export interface Sql {
  /** `text` as a QueryConfig when the statement is named: prepared once per connection. */
  query<R extends QueryResultRow = QueryResultRow>(
    text: string | QueryConfig,
    values?: unknown[],
  ): Promise<QueryResult<R>>;
}

/** A u64 (a chunk's XXH64 sum) as PostgreSQL's signed bigint, and back. */
export function toI64(v: bigint | undefined): string | null {
  return v === undefined ? null : BigInt.asIntN(64, v).toString();
}

export function fromI64(v: string | null | undefined): bigint | undefined {
  return v === null || v === undefined ? undefined : BigInt.asUintN(64, BigInt(v));
}

/** A bigint column as a number (node-postgres returns int8 as a string). */
export function num(v: string | number | null | undefined): number | undefined {
  return v === null || v === undefined ? undefined : Number(v);
}
