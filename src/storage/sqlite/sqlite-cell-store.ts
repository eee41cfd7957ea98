import type Database from 'better-sqlite3';
import type {
  ApplyStats,
  ApplyTx,
  BatchEffects,
  CellStore,
} from '../cell-store.ts';
import { OffsetConflictError } from '../cell-store.ts';
import type { MigrationResult } from '../migrations.ts';
import { runMigrations } from '../migrations.ts';
import type {
  InstallationKey,
  InstallationState,
  ProfileKey,
  ProfileState,
} from '../../profiles/profile-model.ts';
import { installationKeyString, profileKeyString } from '../../profiles/profile-model.ts';
import { INSTALLATION_COLUMNS, PROFILE_COLUMNS, SqlCellStoreReads, installationFromRow, profileFromRow } from '../sql-cell-store-reads.ts';
import { SQLITE_STORE_MIGRATIONS } from './sqlite-store-migrations.ts';
import { engagementStatements, INSERT_EVENT_SQL, INSERT_MESSAGE_SQL, INSERT_SEND_SQL, messageParams, sendParams } from '../sql-outbox.ts';
import { isSqliteUnavailable, openSqlite, openSqliteDb, type SqliteDb } from './sqlite-db.ts';
import type { Segment } from '../../targeting/segment-model.ts';
import { estimateQuery } from '../../targeting/segment-sql.ts';
import { SQLITE_DIALECT as DIALECT } from '../../targeting/sql-dialects.ts';
import type { SqlValue } from '../sql.ts';
import {
  compileContext,
  estimateFromRow,
  matchedFromRow,
  matchingQuery,
  type MatchedProfile,
  type SegmentEstimate,
  type TargetingOptions,
} from '../../targeting/targeting-reads.ts';
import { readBatch, sqliteParams, type ReadQueryRunner } from '../query-runner.ts';
import { writeAudienceChanges, type AudienceRows } from '../audience-writes.ts';
import { readAudienceMembers, readAudienceStates } from '../sql-audience-reads.ts';
import { prepareAudienceRows } from './sqlite-audience-rows.ts';
import type { AudienceMember, AudienceState } from '../cell-store.ts';

type Row = Record<string, unknown>;

/**
 * The embedded cell store: one SQLite file per cell. Writes go through prepared statements inside
 * one IMMEDIATE transaction per batch; better-sqlite3 is synchronous, so the applier that calls
 * this runs on a worker thread, never on the event loop that answers the API.
 */
export class SqliteCellStore extends SqlCellStoreReads implements CellStore {
  readonly capabilities = Object.freeze({ skipLocked: false, concurrentWriters: false, blocking: true });
  protected readonly targetingDialect = DIALECT;
  readonly #sqlite: SqliteDb;
  #runner: ReadQueryRunner;
  #statements: ReturnType<typeof prepare> | undefined;
  #audienceRows: AudienceRows | undefined;

  private constructor(db: SqliteDb) {
    super(db);
    this.#sqlite = db;
    this.#runner = new InProcessSqliteReader(db.raw.name);
  }

  static async open(file: string, options: { create?: boolean } = {}): Promise<SqliteCellStore> {
    const store = new SqliteCellStore(openSqliteDb(file, { create: options.create ?? true, cacheSizeKb: 32 * 1024 }));
    try {
      await store.migrate();
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  migrate(): Promise<MigrationResult> {
    return runMigrations(this.#sqlite, SQLITE_STORE_MIGRATIONS, undefined);
  }

  isUnavailableError(error: unknown): boolean {
    return isSqliteUnavailable(error);
  }

  /** Where long targeting reads run: in-process until the runtime gives the store a thread for them. */
  useQueryRunner(runner: ReadQueryRunner): void {
    const previous = this.#runner;
    this.#runner = runner;
    void previous.close().catch(() => undefined);
  }

  /** `PRAGMA optimize` over every table, with ANALYZE sampling bounded so that it takes milliseconds. */
  optimize(): Promise<void> {
    this.#sqlite.raw.pragma('analysis_limit = 1000');
    this.#sqlite.raw.pragma('optimize = 0x10002');
    return Promise.resolve();
  }

  get file(): string {
    return this.#sqlite.raw.name;
  }

  override async close(): Promise<void> {
    await this.#runner.close().catch(() => undefined);
    await super.close();
  }

  async *matchingProfiles(projectId: string, segment: Segment, options: TargetingOptions): AsyncIterable<MatchedProfile[]> {
    const q = await matchingQuery(this.#sqlite, DIALECT, projectId, segment, options);
    for await (const rows of this.#runner.batches(q.text, q.params, options.batchSize ?? 5000)) yield rows.map(matchedFromRow);
  }

  override async estimateSegment(projectId: string, segment: Segment, options: TargetingOptions): Promise<SegmentEstimate> {
    const q = estimateQuery(segment, DIALECT, await compileContext(this.#sqlite, projectId, segment, options));
    return estimateFromRow((await this.#runner.all(q.text, q.params))[0]);
  }

  audienceStates(projectId: string): Promise<AudienceState[]> {
    return readAudienceStates(this.db, projectId);
  }

  audienceMembers(projectId: string, audienceId: string, options: { limit: number; after?: AudienceMember | undefined }): Promise<AudienceMember[]> {
    return readAudienceMembers(this.db, projectId, audienceId, options);
  }

  #prepared(): ReturnType<typeof prepare> {
    this.#statements ??= prepare(this.#sqlite.raw);
    return this.#statements;
  }

  applyBatch(
    logId: string,
    fromSeq: number,
    toSeq: number,
    plan: (tx: ApplyTx) => Promise<BatchEffects>,
  ): Promise<ApplyStats> {
    const s = this.#prepared();
    return this.#sqlite.transaction(async () => {
      const current = s.getOffset.get(logId) as { applied_seq: number } | undefined;
      if ((current?.applied_seq ?? 0) !== fromSeq) {
        throw new OffsetConflictError(`log ${logId} is at ${current?.applied_seq ?? 0} in the store, expected ${fromSeq}`);
      }
      const effects = await plan({
        loadProfiles: (keys) => Promise.resolve(loadProfiles(s, keys)),
        loadInstallations: (keys) => Promise.resolve(loadInstallations(s, keys)),
        loadInstallationsOf: (keys) => Promise.resolve(loadInstallationsOf(s, keys)),
        loadSuppressed: (projectId, channel, addresses) => Promise.resolve(loadSuppressed(s, projectId, channel, addresses)),
      });
      const stats = writeEffects(s, logId, effects);
      if (effects.audiences.length > 0) {
        this.#audienceRows ??= prepareAudienceRows(this.#sqlite.raw);
        await writeAudienceChanges(this.#audienceRows, effects.audiences);
      }
      s.putOffset.run(logId, toSeq, Date.now());
      return stats;
    });
  }
}

function prepare(db: Database.Database) {
  const cache = new Map<string, Database.Statement>();
  return {
    /** A statement built at run time (a few fixed shapes), prepared once. */
    statement(text: string): Database.Statement {
      let st = cache.get(text);
      if (!st) cache.set(text, (st = db.prepare(text)));
      return st;
    },
    getOffset: db.prepare('SELECT applied_seq FROM ingest_offsets WHERE log_id = ?'),
    putOffset: db.prepare(
      `INSERT INTO ingest_offsets (log_id, applied_seq, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (log_id) DO UPDATE SET applied_seq = excluded.applied_seq, updated_at = excluded.updated_at`,
    ),
    profiles: db.prepare(
      `SELECT ${PROFILE_COLUMNS} FROM profiles WHERE project_id = ? AND custom_id IN (SELECT value FROM json_each(?))`,
    ),
    installations: db.prepare(
      `SELECT ${INSTALLATION_COLUMNS} FROM installations i LEFT JOIN profiles p ON p.id = i.profile_id
       WHERE i.project_id = ? AND i.install_id IN (SELECT value FROM json_each(?))`,
    ),
    installationsOf: db.prepare(
      `SELECT ${INSTALLATION_COLUMNS} FROM installations i JOIN profiles p ON p.id = i.profile_id
       WHERE p.project_id = ? AND p.custom_id IN (SELECT value FROM json_each(?)) ORDER BY i.created_at, i.install_id`,
    ),
    suppressed: db.prepare(
      'SELECT address, reason FROM suppressions WHERE project_id = ? AND channel = ? AND address IN (SELECT value FROM json_each(?))',
    ),
    deleteEvents: db.prepare('DELETE FROM events WHERE profile_id = ?'),
    deleteCounts: db.prepare('DELETE FROM event_counts WHERE profile_id = ?'),
    deleteInstallations: db.prepare('DELETE FROM installations WHERE profile_id = ?'),
    deleteProfile: db.prepare('DELETE FROM profiles WHERE id = ?'),
    deleteInstallation: db.prepare('DELETE FROM installations WHERE project_id = ? AND install_id = ?'),
    insertProfile: db.prepare(
      `INSERT INTO profiles (project_id, custom_id, email, email_marketing, phone, sms_marketing, language, region, timezone,
         attributes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    updateProfile: db.prepare(
      `UPDATE profiles SET email = ?, email_marketing = ?, phone = ?, sms_marketing = ?, language = ?, region = ?,
         timezone = ?, attributes = ?, updated_at = ? WHERE id = ?`,
    ),
    upsertInstallation: db.prepare(
      `INSERT INTO installations (project_id, install_id, profile_id, platform, push_token, web_push, push_enabled,
         push_disabled_reason, app_version, last_seen_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (project_id, install_id) DO UPDATE SET profile_id = excluded.profile_id, platform = excluded.platform,
         push_token = excluded.push_token, web_push = excluded.web_push, push_enabled = excluded.push_enabled,
         push_disabled_reason = excluded.push_disabled_reason, app_version = excluded.app_version,
         last_seen_at = excluded.last_seen_at, updated_at = excluded.updated_at`,
    ),
    insertSend: db.prepare(INSERT_SEND_SQL),
    insertMessage: db.prepare(INSERT_MESSAGE_SQL),
    insertMessageEvent: db.prepare(INSERT_EVENT_SQL),
    insertEvent: db.prepare(
      `INSERT INTO events (profile_id, name, time, client_id, attributes, received_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT DO NOTHING`,
    ),
    upsertCount: db.prepare(
      `INSERT INTO event_counts (profile_id, name, count, first_at, last_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (profile_id, name) DO UPDATE SET count = count + excluded.count,
         first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at)`,
    ),
    insertCatalog: db.prepare(
      'INSERT OR IGNORE INTO catalog (project_id, kind, name, type, first_seen_at) VALUES (?, ?, ?, ?, ?)',
    ),
    insertQuarantine: db.prepare(
      `INSERT INTO quarantine (log_id, seq, project_id, payload, reason, attempts, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
  };
}

type Statements = ReturnType<typeof prepare>;

const LOOKUP_CHUNK = 500;

/** Runs `stmt(project, json array of ids)` over the ids grouped by project, in chunks. */
function lookup<K>(keys: readonly K[], project: (k: K) => string, id: (k: K) => string, stmt: Database.Statement): Row[] {
  const byProject = new Map<string, string[]>();
  for (const k of keys) {
    const list = byProject.get(project(k));
    if (list) list.push(id(k));
    else byProject.set(project(k), [id(k)]);
  }
  const rows: Row[] = [];
  for (const [projectId, ids] of byProject) {
    for (let i = 0; i < ids.length; i += LOOKUP_CHUNK) {
      rows.push(...(stmt.all(projectId, JSON.stringify(ids.slice(i, i + LOOKUP_CHUNK))) as Row[]));
    }
  }
  return rows;
}

function loadProfiles(s: Statements, keys: readonly ProfileKey[]): Map<string, ProfileState> {
  const rows = lookup(keys, (k) => k.projectId, (k) => k.customId, s.profiles);
  return new Map(rows.map(profileFromRow).map((p) => [profileKeyString(p.projectId, p.customId), p]));
}

function loadInstallations(s: Statements, keys: readonly InstallationKey[]): Map<string, InstallationState> {
  const rows = lookup(keys, (k) => k.projectId, (k) => k.installId, s.installations);
  return new Map(rows.map(installationFromRow).map((i) => [installationKeyString(i.projectId, i.installId), i]));
}

function loadInstallationsOf(s: Statements, keys: readonly ProfileKey[]): Map<string, InstallationState[]> {
  const out = new Map<string, InstallationState[]>();
  for (const row of lookup(keys, (k) => k.projectId, (k) => k.customId, s.installationsOf)) {
    const i = installationFromRow(row);
    const k = profileKeyString(i.projectId, i.customId!);
    out.set(k, [...(out.get(k) ?? []), i]);
  }
  return out;
}

function loadSuppressed(s: Statements, projectId: string, channel: string, addresses: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < addresses.length; i += LOOKUP_CHUNK) {
    const rows = s.suppressed.all(projectId, channel, JSON.stringify(addresses.slice(i, i + LOOKUP_CHUNK))) as Row[];
    for (const r of rows) out.set(String(r.address), String(r.reason));
  }
  return out;
}

function writeEffects(s: Statements, logId: string, effects: BatchEffects): ApplyStats {
  for (const id of effects.deletedProfileIds) {
    s.deleteEvents.run(id);
    s.deleteCounts.run(id);
    s.deleteInstallations.run(id);
    s.deleteProfile.run(id);
  }
  for (const i of effects.deletedInstallations) s.deleteInstallation.run(i.projectId, i.installId);
  const ids = new Map<string, number>();
  for (const k of effects.knownProfiles) ids.set(profileKeyString(k.projectId, k.customId), k.id);
  for (const p of effects.profiles) {
    const n = p.natives;
    const attributes = JSON.stringify(p.attributes);
    if (p.id === null) {
      const info = s.insertProfile.run(
        p.projectId, p.customId, n.email, n.emailMarketing, n.phone, n.smsMarketing, n.language, n.region, n.timezone,
        attributes, p.createdAt, p.updatedAt,
      );
      p.id = Number(info.lastInsertRowid); // the caller learns the new id (the applier caches it)
      ids.set(profileKeyString(p.projectId, p.customId), p.id);
    } else {
      s.updateProfile.run(
        n.email, n.emailMarketing, n.phone, n.smsMarketing, n.language, n.region, n.timezone, attributes, p.updatedAt, p.id,
      );
      ids.set(profileKeyString(p.projectId, p.customId), p.id);
    }
  }
  const profileId = (projectId: string, customId: string): number => {
    const id = ids.get(profileKeyString(projectId, customId));
    if (id === undefined) throw new Error(`plan references profile ${customId} that it did not write`);
    return id;
  };
  for (const i of effects.installations) {
    s.upsertInstallation.run(
      i.projectId, i.installId, i.customId === null ? null : profileId(i.projectId, i.customId), i.platform, i.pushToken,
      i.webPush ? JSON.stringify(i.webPush) : null, i.pushEnabled ? 1 : 0, i.pushDisabledReason, i.appVersion, i.lastSeenAt,
      i.createdAt, i.updatedAt,
    );
  }
  let inserted = 0;
  const counts = new Map<string, { id: number; name: string; count: number; first: number; last: number }>();
  for (const e of effects.events) {
    const id = profileId(e.projectId, e.customId);
    const info = s.insertEvent.run(id, e.name, e.timeMs, e.clientId, e.attributes ? JSON.stringify(e.attributes) : null, e.receivedAt);
    if (info.changes === 0) continue;
    inserted++;
    const key = `${id}\u0000${e.name}`;
    const c = counts.get(key);
    if (c) {
      c.count++;
      c.first = Math.min(c.first, e.timeMs);
      c.last = Math.max(c.last, e.timeMs);
    } else {
      counts.set(key, { id, name: e.name, count: 1, first: e.timeMs, last: e.timeMs });
    }
  }
  for (const c of counts.values()) s.upsertCount.run(c.id, c.name, c.count, c.first, c.last);
  const now = Date.now();
  for (const c of effects.catalog) s.insertCatalog.run(c.projectId, c.kind, c.name, c.type, now);
  for (const q of effects.quarantined) {
    s.insertQuarantine.run(logId, q.seq, q.projectId, q.payload, q.reason, q.attempts, now);
  }
  for (const send of effects.sends) s.insertSend.run(...sendParams(send));
  for (const m of effects.messages) {
    // I4: a message exists once per idempotency key; a replayed batch inserts nothing new.
    if (s.insertMessage.run(...messageParams(m)).changes === 1) s.insertMessageEvent.run(m.id, m.createdAt, m.state, m.errorCode, m.reason);
  }
  for (const [text, params] of engagementStatements(effects.engagements)) s.statement(text).run(...params);
  return {
    profilesWritten: effects.profiles.length,
    installationsWritten: effects.installations.length,
    eventsInserted: inserted,
    eventsDeduplicated: effects.events.length - inserted,
    profilesDeleted: effects.deletedProfileIds.length,
    quarantined: effects.quarantined.length,
  };
}

/**
 * Long reads on a read-only connection per query (WAL: one snapshot, writers never wait); the
 * event loop runs between batches. Used where blocking the calling thread is acceptable (tools,
 * tests, the bench); the server gives stores a threaded runner instead.
 */
export class InProcessSqliteReader implements ReadQueryRunner {
  constructor(private readonly file: string) {}

  all(text: string, params: readonly SqlValue[]): Promise<Row[]> {
    const reader = openSqlite(this.file, { readonly: true, cacheSizeKb: 16 * 1024 });
    try {
      return Promise.resolve(reader.prepare(text).all(...sqliteParams(params)) as Row[]);
    } finally {
      reader.close();
    }
  }

  async *batches(text: string, params: readonly SqlValue[], size: number): AsyncIterable<Row[]> {
    const reader = openSqlite(this.file, { readonly: true, cacheSizeKb: 16 * 1024 });
    const rows = reader.prepare(text).iterate(...sqliteParams(params)) as IterableIterator<Row>;
    try {
      for (;;) {
        const batch = readBatch(rows, size);
        if (batch.length > 0) yield batch;
        if (batch.length < size) return;
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      rows.return?.();
      reader.close();
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
