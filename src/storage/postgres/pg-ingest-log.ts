import { randomUUID } from 'node:crypto';
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
import type { PgTx } from './pg-db.ts';
import { isPgUnavailable, openPgDb, type PgDb } from './pg-db.ts';

export const PG_LOG_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'log',
    sql: `
      CREATE TABLE log_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      -- One row holds the next seq. Appenders lock it first, so seqs become visible in commit order.
      CREATE TABLE log_head (id INTEGER PRIMARY KEY CHECK (id = 1), next_seq BIGINT NOT NULL);
      INSERT INTO log_head (id, next_seq) VALUES (1, 1);
      CREATE TABLE log_entries (seq BIGINT PRIMARY KEY, appended_at BIGINT NOT NULL, size INTEGER NOT NULL, payload TEXT NOT NULL);
      CREATE TABLE idempotency_keys (
        project_id TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL,
        last_seq BIGINT NOT NULL, meta TEXT NOT NULL, created_at BIGINT NOT NULL,
        PRIMARY KEY (project_id, key));
      CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
    `,
  },
];

/** Serialises migrators of one database across processes. */
export const PG_MIGRATION_LOCK = 'SELECT pg_advisory_xact_lock(7243501)';

/**
 * The ingest log on PostgreSQL, in a database of its own (never a cell store's). An append is one
 * transaction: lock the head row, settle idempotency keys, insert every payload with one
 * statement, move the head. PostgreSQL's commit makes it durable (synchronous_commit must stay on).
 */
export class PgIngestLog implements IngestLog {
  readonly capabilities = Object.freeze({ blocking: false });
  #logId: string | undefined;

  private constructor(private readonly db: PgDb) {}

  static async open(url: string): Promise<PgIngestLog> {
    const log = new PgIngestLog(openPgDb(url, { max: 4, applicationName: 'herald-log', queryTimeoutMs: 5_000 }));
    try {
      await log.migrate();
      await log.logId();
    } catch (error) {
      await log.close();
      throw error;
    }
    return log;
  }

  migrate(): Promise<MigrationResult> {
    return runMigrations(this.db, PG_LOG_MIGRATIONS, PG_MIGRATION_LOCK);
  }

  async logId(): Promise<string> {
    if (this.#logId) return this.#logId;
    await this.db.run("INSERT INTO log_meta (key, value) VALUES ('log_id', ?) ON CONFLICT DO NOTHING", [randomUUID()]);
    const rows = await this.db.query<{ value: string }>("SELECT value FROM log_meta WHERE key = 'log_id'");
    this.#logId = rows[0]!.value;
    return this.#logId;
  }

  append(requests: readonly AppendRequest[], nowMs: number, deadlineMs?: number): Promise<AppendOutcome[]> {
    checkDeadline(deadlineMs);
    return this.db.transaction(async (tx) => {
      const head = await tx.queryNative<{ next_seq: number }>('SELECT next_seq FROM log_head WHERE id = 1 FOR UPDATE', []);
      let next = head[0]!.next_seq;
      const seqs: number[] = [];
      const times: number[] = [];
      const sizes: number[] = [];
      const payloads: string[] = [];
      const outcomes: AppendOutcome[] = [];
      const claimed = new Map<string, { hash: string; lastSeq: number; meta: string }>();
      for (const request of requests) {
        const claim = request.idempotency;
        if (claim) {
          const mapKey = `${claim.projectId}\u0000${claim.key}`;
          const found = claimed.get(mapKey) ?? (await this.#findKey(tx, claim.projectId, claim.key, nowMs));
          if (found) {
            outcomes.push(
              found.hash === claim.requestHash ? { kind: 'replayed', lastSeq: found.lastSeq, meta: found.meta } : { kind: 'conflict' },
            );
            continue;
          }
        }
        const first = next;
        for (const payload of request.payloads) {
          seqs.push(next++);
          times.push(nowMs);
          sizes.push(payload.length);
          payloads.push(payload);
        }
        const last = next - 1;
        if (claim) {
          claimed.set(`${claim.projectId}\u0000${claim.key}`, { hash: claim.requestHash, lastSeq: last, meta: claim.meta });
          await tx.queryNative(
            `INSERT INTO idempotency_keys (project_id, key, request_hash, last_seq, meta, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (project_id, key) DO UPDATE SET request_hash = excluded.request_hash, last_seq = excluded.last_seq,
               meta = excluded.meta, created_at = excluded.created_at`,
            [claim.projectId, claim.key, claim.requestHash, last, claim.meta, nowMs],
          );
        }
        outcomes.push({ kind: 'appended', firstSeq: first, lastSeq: last });
      }
      if (seqs.length > 0) {
        await tx.queryNative(
          'INSERT INTO log_entries (seq, appended_at, size, payload) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[])',
          [seqs, times, sizes, payloads],
        );
        await tx.queryNative('UPDATE log_head SET next_seq = $1 WHERE id = 1', [next]);
      }
      checkDeadline(deadlineMs); // throwing here rolls the transaction back
      return outcomes;
    });
  }

  async #findKey(tx: PgTx, projectId: string, key: string, nowMs: number) {
    const rows = await tx.queryNative<{ request_hash: string; last_seq: number; meta: string; created_at: number }>(
      'SELECT request_hash, last_seq, meta, created_at FROM idempotency_keys WHERE project_id = $1 AND key = $2',
      [projectId, key],
    );
    const row = rows[0];
    if (!row || row.created_at <= nowMs - IDEMPOTENCY_TTL_MS) return undefined;
    return { hash: row.request_hash, lastSeq: row.last_seq, meta: row.meta };
  }

  async read(afterSeq: number, limit: number, maxBytes = Infinity): Promise<LogEntry[]> {
    let take = limit;
    if (Number.isFinite(maxBytes)) {
      const sizes = await this.db.query<{ size: number }>('SELECT size FROM log_entries WHERE seq > ? ORDER BY seq LIMIT ?', [
        afterSeq,
        limit,
      ]);
      take = entriesWithin(
        sizes.map((r) => r.size),
        maxBytes,
      );
    }
    const rows = await this.db.query<{ seq: number; appended_at: number; payload: string }>(
      'SELECT seq, appended_at, payload FROM log_entries WHERE seq > ? ORDER BY seq LIMIT ?',
      [afterSeq, take],
    );
    return rows.map((r) => ({ seq: r.seq, appendedAt: r.appended_at, payload: r.payload }));
  }

  async headSeq(): Promise<number> {
    const rows = await this.db.query<{ next_seq: number }>('SELECT next_seq FROM log_head WHERE id = 1');
    return (rows[0]?.next_seq ?? 1) - 1;
  }

  async stats(): Promise<LogStats> {
    const rows = await this.db.query<{ oldest: number | null; n: number }>(
      'SELECT MIN(seq) AS oldest, COUNT(*) AS n FROM log_entries',
    );
    return { headSeq: await this.headSeq(), oldestSeq: rows[0]?.oldest ?? null, entries: rows[0]?.n ?? 0 };
  }

  async prune(options: { appliedSeq: number; cutoffMs: number; maxRows: number; nowMs: number }): Promise<number> {
    const { changes } = await this.db.run(
      `DELETE FROM log_entries WHERE seq IN (
         SELECT seq FROM log_entries WHERE seq <= ? AND appended_at < ? ORDER BY seq LIMIT ?)`,
      [options.appliedSeq, options.cutoffMs, options.maxRows],
    );
    await this.db.run('DELETE FROM idempotency_keys WHERE created_at < ?', [options.nowMs - IDEMPOTENCY_TTL_MS]);
    return changes;
  }

  async ping(): Promise<void> {
    await this.db.query('SELECT 1');
  }

  isUnavailableError(error: unknown): boolean {
    return isPgUnavailable(error);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
