import type { ApplyStats, ApplyTx, BatchEffects, CellStore } from '../cell-store.ts';
import { OffsetConflictError } from '../cell-store.ts';
import type { MigrationResult } from '../migrations.ts';
import { runMigrations } from '../migrations.ts';
import type { InstallationState, ProfileState } from '../../profiles/profile-model.ts';
import { installationKeyString, profileKeyString } from '../../profiles/profile-model.ts';
import { INSTALLATION_COLUMNS, PROFILE_COLUMNS, SqlCellStoreReads, installationFromRow, profileFromRow } from '../sql-cell-store-reads.ts';
import { PG_STORE_MIGRATIONS } from './pg-store-migrations.ts';
import { engagementStatements, INSERT_SEND_SQL, messageParams, sendParams } from '../sql-outbox.ts';
import { PG_MIGRATION_LOCK } from './pg-ingest-log.ts';
import { isPgUnavailable, numberPlaceholders, openPgDb, type PgDb, type PgTx } from './pg-db.ts';
import type { Segment } from '../../targeting/segment-model.ts';
import { POSTGRES_DIALECT } from '../../targeting/sql-dialects.ts';
import { estimateSegment, matchedFromRow, matchingQuery, type MatchedProfile, type SegmentEstimate, type TargetingOptions } from '../../targeting/targeting-reads.ts';

/** Hash tables for the segment subqueries: large enough that PostgreSQL hashes them instead of re-running them. */
const TARGETING_WORK_MEM = "SET LOCAL work_mem = '256MB'";
import { writeAudienceChanges } from '../audience-writes.ts';
import { readAudienceMembers, readAudienceStates } from '../sql-audience-reads.ts';
import { pgAudienceRows } from './pg-audience-rows.ts';
import type { AudienceMember, AudienceState } from '../cell-store.ts';

type Row = Record<string, unknown>;

/**
 * A cell store on PostgreSQL: one database per cell. A batch is a handful of set-based statements
 * (unnest arrays), so a round trip costs the same for one record as for five thousand.
 */
export class PgCellStore extends SqlCellStoreReads implements CellStore {
  readonly capabilities = Object.freeze({ skipLocked: true, concurrentWriters: true, blocking: false });
  protected readonly targetingDialect = POSTGRES_DIALECT;
  readonly #pg: PgDb;

  private constructor(db: PgDb) {
    super(db);
    this.#pg = db;
  }

  static async open(url: string, options: { poolSize?: number } = {}): Promise<PgCellStore> {
    const store = new PgCellStore(openPgDb(url, { max: options.poolSize ?? 6, applicationName: 'herald-store' }));
    try {
      await store.migrate();
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  migrate(): Promise<MigrationResult> {
    return runMigrations(this.#pg, PG_STORE_MIGRATIONS, PG_MIGRATION_LOCK);
  }

  isUnavailableError(error: unknown): boolean {
    return isPgUnavailable(error);
  }

  /**
   * Refreshes the planner's statistics of the tables campaigns and the outbox query. Autovacuum
   * does this too, later — or never where it is turned off — and a fan-out or a claim planned on
   * the statistics of an empty table probes an index per row (minutes instead of a second).
   */
  async optimize(): Promise<void> {
    await this.#pg.exec('ANALYZE profiles, installations, messages');
  }

  /** A server-side cursor in a read-only transaction: one snapshot, fetched a batch at a time. */
  async *matchingProfiles(projectId: string, segment: Segment, options: TargetingOptions): AsyncIterable<MatchedProfile[]> {
    const q = await matchingQuery(this.#pg, POSTGRES_DIALECT, projectId, segment, options);
    const client = await this.#pg.pool.connect();
    let broken = false;
    let committed = false;
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await client.query(TARGETING_WORK_MEM);
      await client.query(`DECLARE matching NO SCROLL CURSOR FOR ${numberPlaceholders(q.text)}`, q.params as unknown[]);
      const size = options.batchSize ?? 5000;
      for (;;) {
        const { rows } = await client.query<Record<string, unknown>>(`FETCH ${size} FROM matching`);
        if (rows.length === 0) break;
        yield rows.map(matchedFromRow);
        if (rows.length < size) break;
      }
      await client.query('COMMIT');
      committed = true;
    } catch (error) {
      broken = true;
      throw error;
    } finally {
      if (!broken && !committed) await client.query('ROLLBACK').catch(() => undefined);
      client.release(broken);
    }
  }

  override estimateSegment(projectId: string, segment: Segment, options: TargetingOptions): Promise<SegmentEstimate> {
    return this.#pg.transaction(async (tx) => {
      await tx.query(TARGETING_WORK_MEM);
      return estimateSegment(tx, POSTGRES_DIALECT, projectId, segment, options);
    });
  }

  audienceStates(projectId: string): Promise<AudienceState[]> {
    return readAudienceStates(this.db, projectId);
  }

  audienceMembers(projectId: string, audienceId: string, options: { limit: number; after?: AudienceMember | undefined }): Promise<AudienceMember[]> {
    return readAudienceMembers(this.db, projectId, audienceId, options);
  }

  applyBatch(
    logId: string,
    fromSeq: number,
    toSeq: number,
    plan: (tx: ApplyTx) => Promise<BatchEffects>,
  ): Promise<ApplyStats> {
    return this.#pg.transaction(async (tx) => {
      await tx.queryNative(
        'INSERT INTO ingest_offsets (log_id, applied_seq, updated_at) VALUES ($1, 0, $2) ON CONFLICT DO NOTHING',
        [logId, Date.now()],
      );
      // The row lock serialises appliers of this log: the loser sees the moved offset and backs off.
      const current = await tx.queryNative<{ applied_seq: number }>(
        'SELECT applied_seq FROM ingest_offsets WHERE log_id = $1 FOR UPDATE',
        [logId],
      );
      const at = current[0]?.applied_seq ?? 0;
      if (at !== fromSeq) throw new OffsetConflictError(`log ${logId} is at ${at} in the store, expected ${fromSeq}`);
      const effects = await plan({
        loadProfiles: async (keys) => {
          const rows = await tx.queryNative<Row>(
            `SELECT ${PROFILE_COLUMNS} FROM profiles
             WHERE (project_id, custom_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
            [keys.map((k) => k.projectId), keys.map((k) => k.customId)],
          );
          return new Map(rows.map((r) => profileFromRow(r)).map((p) => [profileKeyString(p.projectId, p.customId), p]));
        },
        loadInstallations: async (keys) => {
          const rows = await tx.queryNative<Row>(
            `SELECT ${INSTALLATION_COLUMNS} FROM installations i LEFT JOIN profiles p ON p.id = i.profile_id
             WHERE (i.project_id, i.install_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
            [keys.map((k) => k.projectId), keys.map((k) => k.installId)],
          );
          return new Map(
            rows.map((r) => installationFromRow(r)).map((i) => [installationKeyString(i.projectId, i.installId), i]),
          );
        },
        loadInstallationsOf: async (keys) => {
          const rows = await tx.queryNative<Row>(
            `SELECT ${INSTALLATION_COLUMNS} FROM installations i JOIN profiles p ON p.id = i.profile_id
             WHERE (p.project_id, p.custom_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
             ORDER BY i.created_at, i.install_id`,
            [keys.map((k) => k.projectId), keys.map((k) => k.customId)],
          );
          const out = new Map<string, InstallationState[]>();
          for (const i of rows.map(installationFromRow)) {
            const k = profileKeyString(i.projectId, i.customId!);
            out.set(k, [...(out.get(k) ?? []), i]);
          }
          return out;
        },
        loadSuppressed: async (projectId, channel, addresses) => {
          const rows = await tx.queryNative<Row>(
            'SELECT address, reason FROM suppressions WHERE project_id = $1 AND channel = $2 AND address = ANY($3::text[])',
            [projectId, channel, addresses],
          );
          return new Map(rows.map((r) => [String(r.address), String(r.reason)]));
        },
      });
      const stats = await writeEffects(tx, logId, effects);
      if (effects.audiences.length > 0) await writeAudienceChanges(pgAudienceRows(tx), effects.audiences);
      await tx.queryNative('UPDATE ingest_offsets SET applied_seq = $1, updated_at = $2 WHERE log_id = $3', [
        toSeq,
        Date.now(),
        logId,
      ]);
      return stats;
    });
  }
}

async function deleteProfiles(tx: PgTx, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  for (const table of ['events', 'event_counts', 'installations']) {
    await tx.queryNative(`DELETE FROM ${table} WHERE profile_id = ANY($1::bigint[])`, [ids]);
  }
  await tx.queryNative('DELETE FROM profiles WHERE id = ANY($1::bigint[])', [ids]);
}

function nativeArrays(profiles: ProfileState[]) {
  return [
    profiles.map((p) => p.natives.email),
    profiles.map((p) => p.natives.emailMarketing),
    profiles.map((p) => p.natives.phone),
    profiles.map((p) => p.natives.smsMarketing),
    profiles.map((p) => p.natives.language),
    profiles.map((p) => p.natives.region),
    profiles.map((p) => p.natives.timezone),
    profiles.map((p) => JSON.stringify(p.attributes)),
  ];
}

async function writeProfiles(tx: PgTx, profiles: ProfileState[]): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  const fresh = profiles.filter((p) => p.id === null);
  const known = profiles.filter((p) => p.id !== null);
  if (fresh.length > 0) {
    const rows = await tx.queryNative<{ id: number; project_id: string; custom_id: string }>(
      `INSERT INTO profiles (project_id, custom_id, email, email_marketing, phone, sms_marketing, language, region, timezone,
         attributes, created_at, updated_at)
       SELECT u.project_id, u.custom_id, u.email, u.email_marketing, u.phone, u.sms_marketing, u.language, u.region,
         u.timezone, u.attributes::jsonb, u.created_at, u.updated_at
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
         $9::text[], $10::text[], $11::bigint[], $12::bigint[])
         AS u(project_id, custom_id, email, email_marketing, phone, sms_marketing, language, region, timezone, attributes,
           created_at, updated_at)
       RETURNING id, project_id, custom_id`,
      [
        fresh.map((p) => p.projectId),
        fresh.map((p) => p.customId),
        ...nativeArrays(fresh),
        fresh.map((p) => p.createdAt),
        fresh.map((p) => p.updatedAt),
      ],
    );
    for (const r of rows) ids.set(profileKeyString(r.project_id, r.custom_id), r.id);
    // The caller learns the new ids (the applier caches them).
    for (const p of fresh) p.id = ids.get(profileKeyString(p.projectId, p.customId)) ?? null;
  }
  if (known.length > 0) {
    await tx.queryNative(
      `UPDATE profiles p SET email = u.email, email_marketing = u.email_marketing, phone = u.phone,
         sms_marketing = u.sms_marketing, language = u.language, region = u.region, timezone = u.timezone,
         attributes = u.attributes::jsonb, updated_at = u.updated_at
       FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
         $9::text[], $10::bigint[])
         AS u(id, email, email_marketing, phone, sms_marketing, language, region, timezone, attributes, updated_at)
       WHERE p.id = u.id`,
      [known.map((p) => p.id), ...nativeArrays(known), known.map((p) => p.updatedAt)],
    );
    for (const p of known) ids.set(profileKeyString(p.projectId, p.customId), p.id!);
  }
  return ids;
}

async function writeInstallations(tx: PgTx, list: InstallationState[], profileId: (p: string, c: string) => number) {
  if (list.length === 0) return;
  await tx.queryNative(
    `INSERT INTO installations (project_id, install_id, profile_id, platform, push_token, web_push, push_enabled,
       app_version, last_seen_at, created_at, updated_at, push_disabled_reason)
     SELECT u.project_id, u.install_id, u.profile_id, u.platform, u.push_token, u.web_push::jsonb, u.push_enabled,
       u.app_version, u.last_seen_at, u.created_at, u.updated_at, u.push_disabled_reason
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::boolean[], $8::text[],
       $9::bigint[], $10::bigint[], $11::bigint[], $12::text[])
       AS u(project_id, install_id, profile_id, platform, push_token, web_push, push_enabled, app_version, last_seen_at,
         created_at, updated_at, push_disabled_reason)
     ON CONFLICT (project_id, install_id) DO UPDATE SET profile_id = excluded.profile_id, platform = excluded.platform,
       push_token = excluded.push_token, web_push = excluded.web_push, push_enabled = excluded.push_enabled,
       push_disabled_reason = excluded.push_disabled_reason, app_version = excluded.app_version,
       last_seen_at = excluded.last_seen_at, updated_at = excluded.updated_at`,
    [
      list.map((i) => i.projectId),
      list.map((i) => i.installId),
      list.map((i) => (i.customId === null ? null : profileId(i.projectId, i.customId))),
      list.map((i) => i.platform),
      list.map((i) => i.pushToken),
      list.map((i) => (i.webPush ? JSON.stringify(i.webPush) : null)),
      list.map((i) => i.pushEnabled),
      list.map((i) => i.appVersion),
      list.map((i) => i.lastSeenAt),
      list.map((i) => i.createdAt),
      list.map((i) => i.updatedAt),
      list.map((i) => i.pushDisabledReason),
    ],
  );
}

async function writeMessages(tx: PgTx, effects: BatchEffects): Promise<void> {
  for (const send of effects.sends) await tx.run(INSERT_SEND_SQL, sendParams(send));
  const list = effects.messages;
  for (let i = 0; i < list.length; i += 1000) {
    const chunk = list.slice(i, i + 1000);
    const cols = chunk.map(messageParams);
    const column = (n: number) => cols.map((c) => c[n] ?? null);
    // I4: ON CONFLICT on the idempotency key: a replayed batch inserts nothing new; RETURNING says what was new.
    const inserted = await tx.queryNative<{ id: string }>(
      `INSERT INTO messages (id, project_id, send_id, idempotency_key, channel, category, lane, custom_id, install_id,
         platform, recipient, web_push, content, state, reason, error_code, attempts, next_attempt_at, expires_at,
         created_at, updated_at, template_id)
       SELECT u.id, u.project_id, u.send_id, u.idempotency_key, u.channel, u.category, u.lane, u.custom_id, u.install_id,
         u.platform, u.recipient, u.web_push::jsonb, u.content::jsonb, u.state, u.reason, u.error_code, 0, u.next_attempt_at,
         u.expires_at, u.created_at, u.updated_at, u.template_id
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[], $9::text[],
         $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::bigint[], $18::bigint[],
         $19::bigint[], $20::bigint[], $21::text[])
         AS u(id, project_id, send_id, idempotency_key, channel, category, lane, custom_id, install_id, platform, recipient,
           web_push, content, state, reason, error_code, next_attempt_at, expires_at, created_at, updated_at, template_id)
       ON CONFLICT DO NOTHING RETURNING id`,
      Array.from({ length: 21 }, (_, n) => column(n)),
    );
    const fresh = new Set(inserted.map((r) => r.id));
    const events = chunk.filter((m) => fresh.has(m.id));
    if (events.length > 0) {
      await tx.queryNative(
        `INSERT INTO message_events (message_id, at, state, code, detail)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[])`,
        [events.map((m) => m.id), events.map((m) => m.createdAt), events.map((m) => m.state), events.map((m) => m.errorCode), events.map((m) => m.reason)],
      );
    }
  }
}

async function writeEvents(tx: PgTx, effects: BatchEffects, profileId: (p: string, c: string) => number): Promise<number> {
  const events = effects.events;
  if (events.length === 0) return 0;
  const ids = events.map((e) => profileId(e.projectId, e.customId));
  const inserted = await tx.queryNative<{ profile_id: number; name: string; time: number }>(
    `INSERT INTO events (profile_id, name, time, client_id, attributes, received_at)
     SELECT u.profile_id, u.name, u.time, u.client_id, u.attributes::jsonb, u.received_at
     FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[])
       AS u(profile_id, name, time, client_id, attributes, received_at)
     ON CONFLICT DO NOTHING
     RETURNING profile_id, name, time`,
    [
      ids,
      events.map((e) => e.name),
      events.map((e) => e.timeMs),
      events.map((e) => e.clientId),
      events.map((e) => (e.attributes ? JSON.stringify(e.attributes) : null)),
      events.map((e) => e.receivedAt),
    ],
  );
  const counts = new Map<string, { id: number; name: string; count: number; first: number; last: number }>();
  for (const r of inserted) {
    const key = `${r.profile_id}\u0000${r.name}`;
    const c = counts.get(key);
    if (c) {
      c.count++;
      c.first = Math.min(c.first, r.time);
      c.last = Math.max(c.last, r.time);
    } else counts.set(key, { id: r.profile_id, name: r.name, count: 1, first: r.time, last: r.time });
  }
  const list = [...counts.values()];
  if (list.length > 0) {
    await tx.queryNative(
      `INSERT INTO event_counts (profile_id, name, count, first_at, last_at)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])
       ON CONFLICT (profile_id, name) DO UPDATE SET count = event_counts.count + excluded.count,
         first_at = LEAST(event_counts.first_at, excluded.first_at), last_at = GREATEST(event_counts.last_at, excluded.last_at)`,
      [list.map((c) => c.id), list.map((c) => c.name), list.map((c) => c.count), list.map((c) => c.first), list.map((c) => c.last)],
    );
  }
  return inserted.length;
}

async function writeEffects(tx: PgTx, logId: string, effects: BatchEffects): Promise<ApplyStats> {
  await deleteProfiles(tx, effects.deletedProfileIds);
  const gone = effects.deletedInstallations;
  if (gone.length > 0) {
    await tx.queryNative(
      'DELETE FROM installations WHERE (project_id, install_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))',
      [gone.map((i) => i.projectId), gone.map((i) => i.installId)],
    );
  }
  const ids = await writeProfiles(tx, effects.profiles);
  for (const k of effects.knownProfiles) ids.set(profileKeyString(k.projectId, k.customId), k.id);
  const profileId = (projectId: string, customId: string): number => {
    const id = ids.get(profileKeyString(projectId, customId));
    if (id === undefined) throw new Error(`plan references profile ${customId} that it did not write`);
    return id;
  };
  await writeInstallations(tx, effects.installations, profileId);
  const inserted = await writeEvents(tx, effects, profileId);
  const now = Date.now();
  if (effects.catalog.length > 0) {
    const c = effects.catalog;
    await tx.queryNative(
      `INSERT INTO catalog (project_id, kind, name, type, first_seen_at)
       SELECT u.*, $5::bigint FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u
       ON CONFLICT DO NOTHING`,
      [c.map((e) => e.projectId), c.map((e) => e.kind), c.map((e) => e.name), c.map((e) => e.type), now],
    );
  }
  await writeMessages(tx, effects);
  for (const [text, params] of engagementStatements(effects.engagements)) await tx.run(text, params);
  for (const q of effects.quarantined) {
    await tx.queryNative(
      'INSERT INTO quarantine (log_id, seq, project_id, payload, reason, attempts, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [logId, q.seq, q.projectId, q.payload, q.reason, q.attempts, now],
    );
  }
  return {
    profilesWritten: effects.profiles.length,
    installationsWritten: effects.installations.length,
    eventsInserted: inserted,
    eventsDeduplicated: effects.events.length - inserted,
    profilesDeleted: effects.deletedProfileIds.length,
    quarantined: effects.quarantined.length,
  };
}
