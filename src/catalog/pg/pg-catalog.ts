/**
 * The catalog in PostgreSQL, shared by every node of a cluster (schema.ts has its tables).
 *
 * A unit of work is one SERIALIZABLE transaction on one pooled client, retried whole when
 * PostgreSQL reports a serialization failure or a deadlock (the contract lets `transact` run
 * its function more than once): units of work are then serializable against each other on
 * every node, as LMDB's single writer makes them on one. Reads outside a unit of work run on
 * the pool, each its own statement: they see only committed data.
 */
import pg from "pg";
import { CatalogUnavailableError } from "../../errors.js";
import type {
  Catalog,
  CatalogTx,
  ChunkIndex,
  LeaseRecord,
  ObjectRecord,
  RecordsReader,
  StoreHoldings,
} from "../catalog.js";
import { type CatalogCopy, type CatalogItem, type KindCounts, refuseLiveLeases } from "../catalog-copy.js";
import { withGuardedTx } from "../unit-guard.js";
import * as index from "./chunk-index.js";
import * as leases from "./leases.js";
import * as objects from "./objects.js";
import { exportPg, pgCounts, pgIsEmpty, pgStoreNames } from "./pg-copy.js";
import { importPg } from "./pg-import.js";
import { recordsOn } from "./pg-records.js";
import { getMeta, unitOfWork } from "./pg-tx.js";
import { migrate } from "./schema.js";
import type { Sql } from "./sql.js";

/** SQLSTATEs after which a unit of work is run again: serialization failure, deadlock. */
const RETRYABLE = new Set(["40001", "40P01"]);
const MAX_ATTEMPTS = 50;
/**
 * A unique violation is what a race to insert the same key gives when the losing unit of work
 * learnt of the key's absence through a join rather than a lookup of the key (PostgreSQL then
 * reports 23505, not 40001): seen with two uploads of the same new chunks at once, on
 * chunks_pkey. Run again, the unit sees the winner's row. A few attempts only: a unit that
 * inserts one key twice by itself would fail the same way every time.
 */
const UNIQUE_VIOLATION = "23505";
const MAX_UNIQUE_ATTEMPTS = 5;

export interface PgCatalogOptions {
  /** postgres://user@host:port/database */
  url: string;
  /** Connections per process (default 10). */
  poolSize?: number;
  /** The node whose leases this catalog takes (LeaseRecord.holder.node). */
  node?: string;
  /** Migrate an older schema at open (schema.ts); refused otherwise. */
  allowMigrate?: boolean;
  /** Open an older schema as it is, neither migrated nor refused: for backup and restore only. */
  asIs?: boolean;
}

export class PgCatalog implements Catalog, CatalogCopy {
  readonly records: RecordsReader;
  private readonly pool: pg.Pool;
  private readonly indexes = new Map<string, ChunkIndex>();
  /** Where the database is, without its password: for messages. */
  private readonly where: string;

  /** The pool for reads outside a unit of work, its lost connections as CatalogUnavailableError. */
  private readonly reads: Sql;

  private constructor(
    pool: pg.Pool,
    url: string,
    private readonly node: string | undefined,
  ) {
    this.pool = pool;
    this.where = redacted(url);
    this.reads = {
      query: (text, values) =>
        (typeof text === "string" ? pool.query(text, values) : pool.query(text)).catch((e: unknown) => {
          throw unavailable(e);
        }),
    };
    this.records = recordsOn(this.reads);
  }

  /** Connects, and brings the schema up to date if allowed (schema.ts). */
  static async open(o: PgCatalogOptions): Promise<PgCatalog> {
    const pool = new pg.Pool({ connectionString: o.url, max: o.poolSize ?? 10 });
    // An idle client whose server went away must not take the process down with it.
    pool.on("error", () => {});
    try {
      const client = await pool.connect();
      try {
        await migrate(client, o.asIs ? "as-is" : o.allowMigrate ? "migrate" : "refuse");
      } finally {
        client.release();
      }
    } catch (e) {
      await pool.end();
      throw e;
    }
    return new PgCatalog(pool, o.url, o.node);
  }

  getObject(id: Buffer): Promise<ObjectRecord | undefined> {
    return objects.getObject(this.reads, id);
  }

  getManifest(id: Buffer): Promise<Buffer | undefined> {
    return objects.getManifest(this.reads, id);
  }

  scanObjects(): AsyncIterable<{ id: Buffer; obj: ObjectRecord }> {
    return objects.scanObjects(this.reads);
  }

  holdingsByStore(): Promise<Map<string, StoreHoldings>> {
    return objects.holdingsByStore(this.reads);
  }

  getMeta<T>(key: string): Promise<T | undefined> {
    return getMeta<T>(this.reads, key);
  }

  chunkIndex(name: string): ChunkIndex {
    let idx = this.indexes.get(name);
    if (idx) return idx;
    const q = this.reads;
    idx = {
      store: name,
      // An ingest asks every ~64 KiB otherwise: one round trip per chunk ran uploads at ×0.41
      // of LMDB's (bench/catalog.ts). 128 chunks are about 8 MiB, and an ingest holds two
      // batches (one being looked up while the next is cut): about 16 MiB per upload.
      batchHint: 128,
      lookup: (ids) => index.lookup(q, name, ids),
      contains: (ids) => index.contains(q, name, ids),
      scanChunks: () => index.scanChunks(q, name),
      scanPacks: () => index.scanPacks(q, name),
      hasPack: (id) => index.hasPack(q, name, id),
      scanTrash: () => index.scanTrash(q, name),
      inTrash: (n) => index.inTrash(q, name, n),
      wants: (n) => index.wants(q, name, n),
    };
    this.indexes.set(name, idx);
    return idx;
  }

  transact<T>(fn: (tx: CatalogTx) => Promise<T>): Promise<T> {
    return this.atomically((q) => withGuardedTx(unitOfWork(q), fn));
  }

  beginLease(what: string, ttlMs: number): Promise<LeaseRecord> {
    return this.atomically((q) => leases.beginLease(q, what, ttlMs, this.node));
  }

  renewLease(id: number, ttlMs: number): Promise<boolean> {
    return this.atomically((q) => leases.renewLease(q, id, ttlMs));
  }

  endLease(id: number): Promise<void> {
    return this.atomically((q) => leases.endLease(q, id));
  }

  /**
   * A session-level advisory lock, on a connection of its own held for as long as `fn` runs:
   * PostgreSQL lets go of it when that connection ends, so a node that dies frees it.
   */
  async exclusively<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const client = await this.checkout();
    const key = `tessera:${name}`;
    let broken = false;
    try {
      await client.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [key]).catch((e: unknown) => {
        throw unavailable(e);
      });
      return await fn();
    } finally {
      await client.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [key]).catch(() => {
        broken = true;
      });
      giveBack(client, broken);
    }
  }

  liveLeases(): Promise<LeaseRecord[]> {
    return leases.liveLeases(this.reads, Date.now());
  }

  /** A PostgreSQL catalog starts at the current layout: there is nothing older to upgrade. */
  async upgradeLayout(_store: string): Promise<void> {}

  // ---- whole-catalog copies (../catalog-copy.ts, pg-copy.ts, pg-import.ts) ----

  async *exportAll(): AsyncIterable<CatalogItem> {
    await refuseLiveLeases(this);
    yield* exportPg(this.reads);
  }

  /** On one client of the pool, in one transaction (pg-import.ts). */
  async importAll(items: AsyncIterable<CatalogItem>, onItems?: (done: number) => void): Promise<KindCounts> {
    const client = await this.checkout();
    try {
      return await importPg(client, this.where, items, onItems);
    } finally {
      giveBack(client, false);
    }
  }

  countAll(): Promise<KindCounts> {
    return pgCounts(this.reads);
  }

  storeNames(): Promise<string[]> {
    return pgStoreNames(this.reads);
  }

  isEmpty(): Promise<boolean> {
    return pgIsEmpty(this.reads);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /**
   * `fn` in one SERIALIZABLE transaction on one client, run again on a serialization failure
   * (or a unique violation, a race's other face).
   */
  private async atomically<T>(fn: (q: Sql) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.checkout();
      let broken = false;
      try {
        await client.query("BEGIN ISOLATION LEVEL SERIALIZABLE");
        const result = await fn(client);
        await client.query("COMMIT");
        return result;
      } catch (e) {
        await client.query("ROLLBACK").catch(() => {
          broken = true;
        });
        const code = (e as { code?: string }).code;
        const again =
          code === UNIQUE_VIOLATION
            ? attempt < MAX_UNIQUE_ATTEMPTS
            : code !== undefined && RETRYABLE.has(code) && attempt < MAX_ATTEMPTS;
        if (again) {
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 2 ** attempt)));
          continue;
        }
        throw unavailable(e);
      } finally {
        giveBack(client, broken);
      }
    }
  }

  /**
   * A client of the pool for work of several statements. An error on it while it is out (the
   * server going away) is met by its next query; unlistened, it would end the process.
   */
  private async checkout(): Promise<pg.PoolClient> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw unavailable(e);
    }
    client.on("error", ignore);
    return client;
  }
}

function ignore(): void {}

/** Returns a checked-out client; a broken one (its connection lost) is closed, not reused. */
function giveBack(client: pg.PoolClient, broken: boolean): void {
  client.off("error", ignore);
  client.release(broken);
}

/** A database URL without its password, for messages. */
export function redacted(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(the database)";
  }
}

/**
 * Errors of a database that cannot be reached (refused, reset, shut down, starting up) as
 * CatalogUnavailableError: nothing was committed, and the request may succeed later.
 */
function unavailable(e: unknown): unknown {
  const code = (e as { code?: string }).code ?? "";
  const lost =
    ["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH"].includes(code) ||
    code.startsWith("08") || // connection exceptions
    code.startsWith("57P") || // shut down, crashed, starting up
    (e instanceof AggregateError && e.errors.some((x) => unavailable(x) !== x)) ||
    (e instanceof Error && /Connection terminated|not queryable|connection error/i.test(e.message));
  return lost ? new CatalogUnavailableError(e instanceof Error ? e.message : String(e), e) : e;
}
