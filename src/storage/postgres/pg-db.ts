import pg from 'pg';
import type { SqlDb, SqlExecutor, SqlValue } from '../sql.ts';

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/** Our pools parse int8 and numeric to JS numbers: offsets, times and counts stay below 2^53. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID || oid === NUMERIC_OID) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format) as (value: string) => unknown;
  },
};

export interface PgOpenOptions {
  max?: number;
  connectionTimeoutMs?: number;
  applicationName?: string;
  /** Client-side limit on each query, so a stalled network fails instead of hanging. */
  queryTimeoutMs?: number;
}

export function createPgPool(url: string, options: PgOpenOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 3000,
    idleTimeoutMillis: 30_000,
    application_name: options.applicationName ?? 'herald',
    ...(options.queryTimeoutMs ? { query_timeout: options.queryTimeoutMs } : {}),
    types,
  });
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on('error', () => undefined);
  return pool;
}

/** Rewrites portable `?` placeholders to PostgreSQL's `$1, $2, …` (our SQL has no `?` in literals). */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

function bind(params: readonly SqlValue[] | undefined): unknown[] {
  return params ? params.map((p) => (p === undefined ? null : p)) : [];
}

class PgExecutor implements SqlExecutor {
  readonly #sqlCache = new Map<string, string>();
  constructor(protected readonly client: pg.Pool | pg.PoolClient) {}

  #sql(sql: string): string {
    let out = this.#sqlCache.get(sql);
    if (out === undefined) {
      out = numberPlaceholders(sql);
      if (this.#sqlCache.size > 500) this.#sqlCache.clear();
      this.#sqlCache.set(sql, out);
    }
    return out;
  }

  async query<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    const result = await this.client.query(this.#sql(sql), bind(params));
    return result.rows as T[];
  }

  async run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }> {
    const result = await this.client.query(this.#sql(sql), bind(params));
    return { changes: result.rowCount ?? 0 };
  }

  /** Native `$n` SQL, for backend-specific statements (arrays, unnest). */
  async queryNative<T>(sql: string, params: readonly unknown[]): Promise<T[]> {
    const result = await this.client.query(sql, params as unknown[]);
    return result.rows as T[];
  }

  async exec(sql: string): Promise<void> {
    await this.client.query(sql);
  }
}

export class PgTx extends PgExecutor {}

export class PgDb extends PgExecutor implements SqlDb {
  constructor(readonly pool: pg.Pool) {
    super(pool);
  }

  async transaction<T>(fn: (tx: PgTx) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await fn(new PgTx(client));
      try {
        await client.query('COMMIT');
      } catch (error) {
        // A connection lost during COMMIT leaves the outcome unknown; any other failure rolled back.
        broken = isPgUnavailable(error);
        throw Object.assign(error as Error, { maybeCommitted: broken });
      }
      return result;
    } catch (error) {
      // A dead or stalled connection cannot roll back; dropping it aborts the transaction server-side.
      if (!broken && isPgUnavailable(error)) broken = true;
      if (!broken) {
        try {
          await client.query('ROLLBACK');
        } catch {
          broken = true;
        }
      }
      throw error;
    } finally {
      client.release(broken);
    }
  }

  #closing: Promise<void> | undefined;

  /** Closes the pool; closing again is harmless. */
  close(): Promise<void> {
    this.#closing ??= this.pool.end();
    return this.#closing;
  }
}

export function openPgDb(url: string, options: PgOpenOptions = {}): PgDb {
  return new PgDb(createPgPool(url, options));
}

/**
 * PostgreSQL errors that mean the database is down or refusing work, not that one record is bad:
 * connection failures, SQLSTATE classes 08 (connection), 53 (resources), 57 (operator intervention).
 */
export function isPgUnavailable(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (/^(08|53|57)/.test(code)) return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'].includes(code)) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect|Query read timeout/i.test(
    message,
  );
}

/** Creates a database if it is missing (needs CREATEDB); the admin URL names any existing database. */
export async function ensurePgDatabase(adminUrl: string, database: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(database)) throw new Error(`invalid database name ${database}`);
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) {
      try {
        await client.query(`CREATE DATABASE ${database}`);
      } catch (error) {
        // Another process created it first: 42P04, or 23505 when both raced inside the catalog.
        const code = (error as { code?: string }).code;
        if (code !== '42P04' && code !== '23505') throw error;
      }
    }
  } finally {
    await client.end();
  }
}
