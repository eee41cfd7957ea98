import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { SqlDb, SqlExecutor, SqlValue } from '../sql.ts';
import { registerTargetingFunctions } from '../../targeting/instant.ts';

export type SqliteDatabase = Database.Database;

export interface SqliteOpenOptions {
  /** Create the file (and its directory) if missing. */
  create?: boolean;
  readonly?: boolean;
  busyTimeoutMs?: number;
  /** Page cache per connection; each process holds several connections, so keep them modest. */
  cacheSizeKb?: number;
}

/**
 * Opens a SQLite file for Herald: WAL (readers never block the writer) and synchronous=FULL, so a
 * committed transaction survives power loss, not only a process crash (I1).
 */
export function openSqlite(file: string, options: SqliteOpenOptions = {}): SqliteDatabase {
  if (options.create) ensureDir(path.dirname(file));
  else if (file !== ':memory:' && !fs.existsSync(file)) {
    throw Object.assign(new Error(`SQLite file ${file} does not exist`), { code: 'SQLITE_CANTOPEN' });
  }
  const db = new Database(file, { readonly: options.readonly ?? false, fileMustExist: !options.create });
  db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
  if (!options.readonly) db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma(`cache_size = -${options.cacheSizeKb ?? 8192}`);
  db.pragma('temp_store = MEMORY');
  registerTargetingFunctions(db);
  return db;
}

function bind(params: readonly SqlValue[] | undefined): unknown[] {
  if (!params) return [];
  return params.map((p) => (p === undefined ? null : typeof p === 'boolean' ? (p ? 1 : 0) : p));
}

class SqliteExecutor implements SqlExecutor {
  readonly #statements = new Map<string, Database.Statement>();
  constructor(readonly raw: SqliteDatabase) {}

  statement(sql: string): Database.Statement {
    let stmt = this.#statements.get(sql);
    if (!stmt) {
      stmt = this.raw.prepare(sql);
      if (this.#statements.size > 500) this.#statements.clear();
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  query<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    const stmt = this.statement(sql);
    if (!stmt.reader) {
      stmt.run(...bind(params));
      return Promise.resolve([]);
    }
    return Promise.resolve(stmt.all(...bind(params)) as T[]);
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }> {
    const info = this.statement(sql).run(...bind(params));
    return Promise.resolve({ changes: info.changes });
  }

  exec(sql: string): Promise<void> {
    this.raw.exec(sql);
    return Promise.resolve();
  }
}

/**
 * The async SQL port over one better-sqlite3 connection. Calls run synchronously; a transaction
 * holds a mutex so that no other caller's statement lands inside it while `fn` awaits.
 */
export class SqliteDb extends SqliteExecutor implements SqlDb {
  #tail: Promise<unknown> = Promise.resolve();
  /** A transaction is open, or waiting for the write lock: other statements queue behind it. */
  #inTransaction = false;
  /** Runs the statements of transactions, with its own statement cache kept across them (preparing is not free). */
  readonly #txExecutor = new SqliteExecutor(this.raw);
  #busyTimeoutMs: number | undefined;

  override query<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    if (this.#inTransaction) return this.#queued(() => super.query<T>(sql, params));
    return super.query<T>(sql, params);
  }

  override run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }> {
    if (this.#inTransaction) return this.#queued(() => super.run(sql, params));
    return super.run(sql, params);
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.#queued(async () => {
      const tx = this.#txExecutor;
      // Set before waiting for the lock: #begin lowers busy_timeout meanwhile, and a plain statement
      // run on this connection then would fail at once with SQLITE_BUSY instead of waiting.
      this.#inTransaction = true;
      try {
        await this.#begin();
      } catch (error) {
        this.#inTransaction = false;
        throw error;
      }
      try {
        const result = await fn(tx);
        this.raw.exec('COMMIT');
        return result;
      } catch (error) {
        if (this.raw.inTransaction) this.raw.exec('ROLLBACK');
        throw error;
      } finally {
        this.#inTransaction = false;
      }
    });
  }

  /**
   * BEGIN IMMEDIATE without blocking the event loop while another connection writes: SQLite's own
   * busy handler sleeps the whole thread (a delivery thread would stop reading provider answers
   * for as long as the applier commits a large send), so the wait happens here, asynchronously,
   * for as long as the connection's busy timeout allows.
   */
  async #begin(): Promise<void> {
    const timeoutMs = (this.#busyTimeoutMs ??= this.raw.pragma('busy_timeout', { simple: true }) as number);
    this.raw.pragma('busy_timeout = 0');
    try {
      const started = performance.now();
      for (;;) {
        try {
          this.raw.exec('BEGIN IMMEDIATE');
          return;
        } catch (error) {
          if ((error as { code?: string }).code !== 'SQLITE_BUSY' || performance.now() - started >= timeoutMs) throw error;
        }
        // Short polls: the writer holding the lock may leave only a brief gap between transactions.
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    } finally {
      this.raw.pragma(`busy_timeout = ${timeoutMs}`);
    }
  }

  close(): Promise<void> {
    if (this.raw.open) this.raw.close();
    return Promise.resolve();
  }

  #queued<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn, fn);
    this.#tail = run.catch(() => undefined);
    return run;
  }
}

export function openSqliteDb(file: string, options: SqliteOpenOptions = {}): SqliteDb {
  return new SqliteDb(openSqlite(file, options));
}

/** SQLite error codes that mean the database itself is unusable, not that one record is bad. */
const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|CORRUPT|NOTADB|FULL|READONLY|PROTOCOL|NOMEM)/;

export function isSqliteUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNAVAILABLE_CODES.test(code);
}

/**
 * mkdir -p without Node's recursive mkdir, which spins forever where the parent exists but
 * refuses new entries (e.g. under /proc): each missing level is created on its own, and the first
 * failure is thrown.
 */
export function ensureDir(dir: string): void {
  const missing: string[] = [];
  let at = path.resolve(dir);
  while (!fs.existsSync(at)) {
    missing.unshift(at);
    const parent = path.dirname(at);
    if (parent === at) break;
    at = parent;
  }
  for (const level of missing) {
    try {
      fs.mkdirSync(level);
    } catch (error) {
      if ((error as { code?: string }).code !== 'EEXIST') throw error;
    }
  }
}
