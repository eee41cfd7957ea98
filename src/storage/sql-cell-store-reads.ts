import type {
  Consent,
  InstallationState,
  Platform,
  ProfileState,
  WebPushSubscription,
} from '../profiles/profile-model.ts';
import type {
  EventCount,
  EventPage,
  ProfileDetail,
  QuarantineItem,
  QuarantineState,
  StoredEvent,
} from './cell-store.ts';
import type { SqlDb } from './sql.ts';
import type { MessagePage, MessageUpdate, OutboxMessage, SendReport } from './outbox-port.ts';
import { SqlOutbox } from './sql-outbox.ts';
import { SqlCampaignStore } from './sql-campaigns.ts';
import type { CatalogEntry, StoreCapabilities } from './cell-store.ts';
import { readInt, readJson, readOptionalInt } from './sql.ts';
import type { Segment } from '../targeting/segment-model.ts';
import type { TargetingDialect } from '../targeting/sql-dialects.ts';
import type { ProfileFacts } from '../targeting/evaluate-profile.ts';
import {
  estimateSegment,
  loadProfileFacts,
  type MatchedProfile,
  type SegmentEstimate,
  type TargetingOptions,
} from '../targeting/targeting-reads.ts';

/** Column lists shared by every query that reads a whole row. */
export const PROFILE_COLUMNS =
  'id, project_id, custom_id, email, email_marketing, phone, sms_marketing, language, region, timezone, attributes, created_at, updated_at';
export const INSTALLATION_COLUMNS =
  'i.project_id, i.install_id, p.custom_id, i.platform, i.push_token, i.web_push, i.push_enabled, i.push_disabled_reason, i.app_version, i.last_seen_at, i.created_at, i.updated_at';

type Row = Record<string, unknown>;

const str = (v: unknown): string | null => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null);

export function profileFromRow(row: Row): ProfileState {
  return {
    id: readInt(row.id),
    projectId: String(row.project_id),
    customId: String(row.custom_id),
    natives: {
      email: str(row.email),
      emailMarketing: str(row.email_marketing) as Consent | null,
      phone: str(row.phone),
      smsMarketing: str(row.sms_marketing) as Consent | null,
      language: str(row.language),
      region: str(row.region),
      timezone: str(row.timezone),
    },
    attributes: readJson(row.attributes, {}),
    createdAt: readInt(row.created_at),
    updatedAt: readInt(row.updated_at),
  };
}

export function installationFromRow(row: Row): InstallationState {
  return {
    projectId: String(row.project_id),
    installId: String(row.install_id),
    customId: str(row.custom_id),
    platform: String(row.platform) as Platform,
    pushToken: str(row.push_token),
    webPush: readJson<WebPushSubscription | null>(row.web_push, null),
    pushEnabled: row.push_enabled === true || row.push_enabled === 1,
    pushDisabledReason: str(row.push_disabled_reason),
    appVersion: str(row.app_version),
    lastSeenAt: readInt(row.last_seen_at),
    createdAt: readInt(row.created_at),
    updatedAt: readInt(row.updated_at),
  };
}

function eventFromRow(row: Row): StoredEvent {
  return {
    id: readInt(row.id),
    name: String(row.name),
    timeMs: readInt(row.time),
    clientId: str(row.client_id),
    attributes: readJson<Record<string, unknown> | null>(row.attributes, null),
    receivedAt: readInt(row.received_at),
  };
}

function quarantineFromRow(row: Row): QuarantineItem {
  return {
    id: readInt(row.id),
    logId: String(row.log_id),
    seq: readInt(row.seq),
    projectId: str(row.project_id),
    payload: String(row.payload),
    reason: String(row.reason),
    attempts: readInt(row.attempts),
    state: String(row.state) as QuarantineState,
    createdAt: readInt(row.created_at),
    resolvedAt: readOptionalInt(row.resolved_at),
  };
}

/**
 * The reads every cell store answers with the same portable SQL. Backends extend it with their
 * own migrations and bulk write path.
 */
export abstract class SqlCellStoreReads {
  abstract readonly capabilities: StoreCapabilities;
  protected abstract readonly targetingDialect: TargetingDialect;
  #outbox: SqlOutbox | undefined;
  #campaigns: SqlCampaignStore | undefined;

  constructor(protected readonly db: SqlDb) {}

  /** Campaigns, runs and messaging settings (issue 5). */
  get campaigns(): SqlCampaignStore {
    this.#campaigns ??= new SqlCampaignStore(this.db, this.capabilities.skipLocked);
    return this.#campaigns;
  }

  /** How this backend's SQL differs, for queries built from segments (targeting, fan-out). */
  get dialect(): TargetingDialect {
    return this.targetingDialect;
  }

  /** Profiles by custom_id (at most a few hundred at a time: a delivery batch rendering its content). */
  async profilesByCustomId(projectId: string, customIds: readonly string[]): Promise<Map<string, ProfileState>> {
    const found = new Map<string, ProfileState>();
    for (let i = 0; i < customIds.length; i += 500) {
      const chunk = customIds.slice(i, i + 500);
      const rows = await this.db.query<Row>(
        `SELECT ${PROFILE_COLUMNS} FROM profiles WHERE project_id = ? AND custom_id IN (${chunk.map(() => '?').join(', ')})`,
        [projectId, ...chunk],
      );
      for (const r of rows) {
        const p = profileFromRow(r);
        found.set(p.customId, p);
      }
    }
    return found;
  }

  get #messages(): SqlOutbox {
    this.#outbox ??= new SqlOutbox(this.db, this.capabilities.skipLocked);
    return this.#outbox;
  }

  async catalog(projectId: string): Promise<CatalogEntry[]> {
    const rows = await this.db.query<Row>('SELECT kind, name, type FROM catalog WHERE project_id = ? ORDER BY kind, name', [projectId]);
    return rows.map((r) => ({ projectId, kind: String(r.kind) as CatalogEntry['kind'], name: String(r.name), type: String(r.type) }));
  }

  /** The project's profiles in the segment, in id order, in batches; never the whole population in memory. */
  abstract matchingProfiles(projectId: string, segment: Segment, options: TargetingOptions): AsyncIterable<MatchedProfile[]>;

  estimateSegment(projectId: string, segment: Segment, options: TargetingOptions): Promise<SegmentEstimate> {
    return estimateSegment(this.db, this.targetingDialect, projectId, segment, options);
  }

  profileFacts(projectId: string, customId: string, options: { events?: ReadonlyMap<string, number | null> | undefined } = {}): Promise<ProfileFacts | null> {
    return loadProfileFacts(this.db, projectId, customId, options);
  }

  claimMessages(owner: string, nowMs: number, leaseMs: number, limit: number): Promise<OutboxMessage[]> {
    return this.#messages.claimMessages(owner, nowMs, leaseMs, limit);
  }

  settleMessages(updates: readonly MessageUpdate[]): Promise<{ applied: number; lostLeases: number }> {
    return this.#messages.settleMessages(updates);
  }

  renewLeases(owner: string, ids: readonly string[], untilMs: number): Promise<number> {
    return this.#messages.renewLeases(owner, ids, untilMs);
  }

  releaseLeases(owner: string, nowMs: number): Promise<number> {
    return this.#messages.releaseLeases(owner, nowMs);
  }

  countDue(nowMs: number): Promise<number> {
    return this.#messages.countDue(nowMs);
  }

  recordReceipt(projectId: string, providerKind: string, providerMessageId: string, status: string, atMs: number): Promise<boolean> {
    return this.#messages.recordReceipt(projectId, providerKind, providerMessageId, status, atMs);
  }

  getSend(projectId: string, sendId: string): Promise<SendReport | null> {
    return this.#messages.getSend(projectId, sendId);
  }

  listMessages(
    projectId: string,
    filter: { customId?: string; sendId?: string; limit: number; cursor?: string | undefined },
  ): Promise<MessagePage> {
    return this.#messages.listMessages(projectId, filter);
  }

  async ping(): Promise<void> {
    await this.db.query('SELECT 1 AS ok FROM ingest_offsets LIMIT 1');
  }

  async appliedSeq(logId: string): Promise<number> {
    const rows = await this.db.query<Row>('SELECT applied_seq FROM ingest_offsets WHERE log_id = ?', [logId]);
    return rows[0] ? readInt(rows[0].applied_seq) : 0;
  }

  async #profileRow(projectId: string, customId: string): Promise<ProfileState | null> {
    const rows = await this.db.query<Row>(
      `SELECT ${PROFILE_COLUMNS} FROM profiles WHERE project_id = ? AND custom_id = ?`,
      [projectId, customId],
    );
    return rows[0] ? profileFromRow(rows[0]) : null;
  }

  async getProfile(projectId: string, customId: string, options: { eventsLimit: number }): Promise<ProfileDetail | null> {
    const profile = await this.#profileRow(projectId, customId);
    if (!profile) return null;
    const id = profile.id!;
    const [installations, events, counts] = await Promise.all([
      this.db.query<Row>(
        `SELECT ${INSTALLATION_COLUMNS} FROM installations i JOIN profiles p ON p.id = i.profile_id
         WHERE i.profile_id = ? ORDER BY i.created_at, i.install_id`,
        [id],
      ),
      this.db.query<Row>(
        'SELECT id, name, time, client_id, attributes, received_at FROM events WHERE profile_id = ? ORDER BY time DESC, id DESC LIMIT ?',
        [id, options.eventsLimit],
      ),
      this.db.query<Row>('SELECT name, count, first_at, last_at FROM event_counts WHERE profile_id = ? ORDER BY name', [id]),
    ]);
    return {
      profile,
      installations: installations.map(installationFromRow),
      events: events.map(eventFromRow),
      eventCounts: counts.map(
        (r): EventCount => ({
          name: String(r.name),
          count: readInt(r.count),
          firstAt: readInt(r.first_at),
          lastAt: readInt(r.last_at),
        }),
      ),
    };
  }

  async listEvents(
    projectId: string,
    customId: string,
    options: { limit: number; before?: { timeMs: number; id: number } | undefined },
  ): Promise<EventPage | null> {
    const profile = await this.#profileRow(projectId, customId);
    if (!profile) return null;
    const before = options.before;
    const rows = before
      ? await this.db.query<Row>(
          `SELECT id, name, time, client_id, attributes, received_at FROM events
           WHERE profile_id = ? AND (time < ? OR (time = ? AND id < ?)) ORDER BY time DESC, id DESC LIMIT ?`,
          [profile.id, before.timeMs, before.timeMs, before.id, options.limit + 1],
        )
      : await this.db.query<Row>(
          `SELECT id, name, time, client_id, attributes, received_at FROM events
           WHERE profile_id = ? ORDER BY time DESC, id DESC LIMIT ?`,
          [profile.id, options.limit + 1],
        );
    const events = rows.slice(0, options.limit).map(eventFromRow);
    const last = events.at(-1);
    return { events, next: rows.length > options.limit && last ? { timeMs: last.timeMs, id: last.id } : null };
  }

  async listQuarantine(options: { states: QuarantineState[]; limit: number }): Promise<QuarantineItem[]> {
    const marks = options.states.map(() => '?').join(', ');
    const rows = await this.db.query<Row>(
      `SELECT * FROM quarantine WHERE state IN (${marks}) ORDER BY id LIMIT ?`,
      [...options.states, options.limit],
    );
    return rows.map(quarantineFromRow);
  }

  async getQuarantine(id: number): Promise<QuarantineItem | null> {
    const rows = await this.db.query<Row>('SELECT * FROM quarantine WHERE id = ?', [id]);
    return rows[0] ? quarantineFromRow(rows[0]) : null;
  }

  async resolveQuarantine(id: number, state: 'replayed' | 'dropped', nowMs: number): Promise<boolean> {
    const { changes } = await this.db.run(
      "UPDATE quarantine SET state = ?, resolved_at = ? WHERE id = ? AND state = 'quarantined'",
      [state, nowMs, id],
    );
    return changes === 1;
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
