import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import type {
  AppendOutcome,
  AppendRequest,
  IngestLog,
  LogEntry,
  LogStats,
} from '../../ingest/ingest-log.ts';
import { checkDeadline, entriesWithin, IDEMPOTENCY_TTL_MS } from '../../ingest/ingest-log.ts';
import type { Migration, MigrationResult } from '../migrations.ts';
import { runMigrations } from '../migrations.ts';
import { isSqliteUnavailable, openSqlite, SqliteDb, type SqliteDatabase } from './sqlite-db.ts';

export const SQLITE_LOG_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'log',
    sql: `
      CREATE TABLE log_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      -- AUTOINCREMENT: a seq is never reused, even after pruning every row.
      -- size (payload length) comes before payload so a reader can budget a batch without reading payloads.
      CREATE TABLE log_entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, appended_at INTEGER NOT NULL, size INTEGER NOT NULL, payload TEXT NOT NULL);
      CREATE TABLE idempotency_keys (
        project_id TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL,
        last_seq INTEGER NOT NULL, meta TEXT NOT NULL, created_at INTEGER NOT NULL,
        PRIMARY KEY (project_id, key));
      CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
    `,
  },
];

/**
 * The embedded ingest log: a SQLite file of its own (never the store's), WAL, synchronous=FULL.
 * One append call is one transaction, so all the requests the group committer gathered share one
 * fsync. Calls are synchronous underneath; the runtime runs appends on a thread of their own.
 */
export class SqliteIngestLog implements IngestLog {
  readonly capabilities = Object.freeze({ blocking: true });
  readonly #db: SqliteDatabase;
  readonly #insert: Database.Statement;
  readonly #read: Database.Statement;
  readonly #sizes: Database.Statement;
  readonly #head: Database.Statement;
  readonly #findKey: Database.Statement;
  readonly #putKey: Database.Statement;
  readonly #appendMany: (requests: readonly AppendRequest[], nowMs: number, deadlineMs: number | undefined) => AppendOutcome[];
  #logId: string | undefined;

  private constructor(db: SqliteDatabase) {
    this.#db = db;
    this.#insert = db.prepare('INSERT INTO log_entries (appended_at, size, payload) VALUES (?, ?, ?)');
    this.#read = db.prepare('SELECT seq, appended_at, payload FROM log_entries WHERE seq > ? ORDER BY seq LIMIT ?');
    this.#sizes = db.prepare('SELECT size FROM log_entries WHERE seq > ? ORDER BY seq LIMIT ?').pluck();
    this.#head = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'log_entries'").pluck();
    this.#findKey = db.prepare(
      'SELECT request_hash, last_seq, meta, created_at FROM idempotency_keys WHERE project_id = ? AND key = ?',
    );
    this.#putKey = db.prepare(
      `INSERT INTO idempotency_keys (project_id, key, request_hash, last_seq, meta, created_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (project_id, key) DO UPDATE SET request_hash = excluded.request_hash, last_seq = excluded.last_seq,
         meta = excluded.meta, created_at = excluded.created_at`,
    );
    this.#appendMany = db.transaction((requests: readonly AppendRequest[], nowMs: number, deadlineMs: number | undefined) => {
      const outcomes = requests.map((request) => this.#appendOne(request, nowMs));
      checkDeadline(deadlineMs); // throwing here rolls the transaction back
      return outcomes;
    });
  }

  static async open(file: string, options: { create?: boolean } = {}): Promise<SqliteIngestLog> {
    const raw = openSqlite(file, { create: options.create ?? true, cacheSizeKb: 4 * 1024 });
    await SqliteIngestLog.migrate(raw);
    const log = new SqliteIngestLog(raw);
    log.#logId = log.#ensureLogId();
    return log;
  }

  static async migrate(raw: SqliteDatabase): Promise<MigrationResult> {
    return runMigrations(new SqliteDb(raw), SQLITE_LOG_MIGRATIONS, undefined);
  }

  #ensureLogId(): string {
    const row = this.#db.prepare("SELECT value FROM log_meta WHERE key = 'log_id'").get() as { value: string } | undefined;
    if (row) return row.value;
    const id = randomUUID();
    this.#db.prepare("INSERT OR IGNORE INTO log_meta (key, value) VALUES ('log_id', ?)").run(id);
    return (this.#db.prepare("SELECT value FROM log_meta WHERE key = 'log_id'").get() as { value: string }).value;
  }

  logId(): Promise<string> {
    return Promise.resolve(this.#logId ?? this.#ensureLogId());
  }

  #appendOne(request: AppendRequest, nowMs: number): AppendOutcome {
    const claim = request.idempotency;
    if (claim) {
      const found = this.#findKey.get(claim.projectId, claim.key) as
        | { request_hash: string; last_seq: number; meta: string; created_at: number }
        | undefined;
      if (found && found.created_at > nowMs - IDEMPOTENCY_TTL_MS) {
        return found.request_hash === claim.requestHash
          ? { kind: 'replayed', lastSeq: found.last_seq, meta: found.meta }
          : { kind: 'conflict' };
      }
    }
    let first = 0;
    let last = 0;
    for (const payload of request.payloads) {
      last = Number(this.#insert.run(nowMs, payload.length, payload).lastInsertRowid);
      if (first === 0) first = last;
    }
    if (claim) this.#putKey.run(claim.projectId, claim.key, claim.requestHash, last, claim.meta, nowMs);
    return { kind: 'appended', firstSeq: first, lastSeq: last };
  }

  async append(requests: readonly AppendRequest[], nowMs: number, deadlineMs?: number): Promise<AppendOutcome[]> {
    checkDeadline(deadlineMs);
    return this.#appendMany(requests, nowMs, deadlineMs);
  }

  read(afterSeq: number, limit: number, maxBytes = Infinity): Promise<LogEntry[]> {
    const take = Number.isFinite(maxBytes) ? entriesWithin(this.#sizes.all(afterSeq, limit) as number[], maxBytes) : limit;
    const rows = this.#read.all(afterSeq, take) as { seq: number; appended_at: number; payload: string }[];
    return Promise.resolve(rows.map((r) => ({ seq: r.seq, appendedAt: r.appended_at, payload: r.payload })));
  }

  headSeq(): Promise<number> {
    // sqlite_sequence keeps the highest seq ever issued, even when every entry was pruned.
    return Promise.resolve((this.#head.get() as number | undefined) ?? 0);
  }

  async stats(): Promise<LogStats> {
    const row = this.#db.prepare('SELECT MIN(seq) AS oldest, COUNT(*) AS n FROM log_entries').get() as {
      oldest: number | null;
      n: number;
    };
    return { headSeq: await this.headSeq(), oldestSeq: row.oldest, entries: row.n };
  }

  prune(options: { appliedSeq: number; cutoffMs: number; maxRows: number; nowMs: number }): Promise<number> {
    const removed = this.#db
      .prepare(
        `DELETE FROM log_entries WHERE seq IN (
           SELECT seq FROM log_entries WHERE seq <= ? AND appended_at < ? ORDER BY seq LIMIT ?)`,
      )
      .run(options.appliedSeq, options.cutoffMs, options.maxRows).changes;
    this.#db.prepare('DELETE FROM idempotency_keys WHERE created_at < ?').run(options.nowMs - IDEMPOTENCY_TTL_MS);
    return Promise.resolve(removed);
  }

  ping(): Promise<void> {
    this.#db.prepare('SELECT 1').get();
    return Promise.resolve();
  }

  isUnavailableError(error: unknown): boolean {
    return isSqliteUnavailable(error);
  }

  close(): Promise<void> {
    if (this.#db.open) this.#db.close();
    return Promise.resolve();
  }
}
