import type { CampaignDefinition, CampaignHistoryEntry, CampaignRecord, CampaignStatus } from '../orchestration/campaign-model.ts';
import type { MessagingSettings } from '../orchestration/messaging-settings.ts';
import { DEFAULT_SETTINGS } from '../orchestration/messaging-settings.ts';
import type { Fragment } from '../targeting/sql-fragment.ts';
import type { SqlDb, SqlExecutor } from './sql.ts';
import { readInt, readJson, readOptionalInt } from './sql.ts';
import type { MessageState } from './outbox-port.ts';

type Row = Record<string, unknown>;

/** One run of a campaign (or of a recurring automation's occurrence): its plan, cursor and progress. */
export interface CampaignRun {
  id: string;
  projectId: string;
  campaignId: string;
  occurrenceAt: number;
  status: 'materializing' | 'paused' | 'sending' | 'completed' | 'cancelled';
  /** What the run sends, resolved at launch (segment, contents, policies): later edits do not change it. */
  plan: Record<string, unknown>;
  /** Where the fan-out stands; moved in the transaction that wrote the messages before it (I4). */
  cursor: Record<string, unknown>;
  targeted: number;
  pausedAt: number | null;
  createdAt: number;
  updatedAt: number;
  completedAt: number | null;
}

/** A report row: how many messages of a run ended (or stand) in each state, per variant and reason code. */
export interface CountRow {
  runId: string;
  variant: string | null;
  state: MessageState;
  code: string | null;
  count: number;
}

/** Hold far enough in the future that a paused run's messages are never due; resume shifts them back. */
export const PAUSE_SHIFT_MS = 10_000_000_000_000;

const campaignFromRow = (r: Row): CampaignRecord => ({
  id: String(r.id),
  projectId: String(r.project_id),
  kind: String(r.kind) as CampaignRecord['kind'],
  name: String(r.name),
  status: String(r.status) as CampaignStatus,
  definition: readJson<CampaignDefinition>(r.definition, {} as CampaignDefinition),
  version: readInt(r.version),
  nextRunAt: readOptionalInt(r.next_run_at),
  createdAt: readInt(r.created_at),
  updatedAt: readInt(r.updated_at),
});

const runFromRow = (r: Row): CampaignRun => ({
  id: String(r.id),
  projectId: String(r.project_id),
  campaignId: String(r.campaign_id),
  occurrenceAt: readInt(r.occurrence_at),
  status: String(r.status) as CampaignRun['status'],
  plan: readJson<Record<string, unknown>>(r.plan, {}),
  cursor: readJson<Record<string, unknown>>(r.cursor, {}),
  targeted: readInt(r.targeted),
  pausedAt: readOptionalInt(r.paused_at),
  createdAt: readInt(r.created_at),
  updatedAt: readInt(r.updated_at),
  completedAt: readOptionalInt(r.completed_at),
});

/**
 * Campaigns, their runs and history, and the project's messaging settings, over the portable SQL
 * port (both backends). Every state change writes its history entry in the same transaction.
 */
export class SqlCampaignStore {
  constructor(
    private readonly db: SqlDb,
    /** Lock the run row while a step or an operator's action changes it (PostgreSQL; SQLite has one writer anyway). */
    private readonly rowLocks: boolean,
  ) {}

  async settings(projectId: string): Promise<MessagingSettings> {
    const rows = await this.db.query<Row>('SELECT settings FROM project_settings WHERE project_id = ?', [projectId]);
    return rows[0] ? { ...DEFAULT_SETTINGS, ...readJson<Partial<MessagingSettings>>(rows[0].settings, {}) } : DEFAULT_SETTINGS;
  }

  async putSettings(projectId: string, settings: MessagingSettings, nowMs: number): Promise<void> {
    await this.db.run(
      `INSERT INTO project_settings (project_id, settings, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (project_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at`,
      [projectId, JSON.stringify(settings), nowMs],
    );
  }

  /** Inserts a campaign; false when its name is taken in the project. */
  async create(c: CampaignRecord, history: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const { changes } = await tx.run(
        `INSERT INTO campaigns (id, project_id, kind, name, status, definition, version, next_run_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
        [c.id, c.projectId, c.kind, c.name, c.status, JSON.stringify(c.definition), c.version, c.nextRunAt, c.createdAt, c.updatedAt],
      );
      if (changes === 1) await addHistory(tx, c.id, null, c.createdAt, 'created', history);
      return changes === 1;
    });
  }

  async get(projectId: string, idOrName: string, kind?: CampaignRecord['kind'] | CampaignRecord['kind'][]): Promise<CampaignRecord | null> {
    const rows = await this.db.query<Row>('SELECT * FROM campaigns WHERE project_id = ? AND (id = ? OR name = ?)', [projectId, idOrName, idOrName]);
    const kinds = kind === undefined ? null : Array.isArray(kind) ? kind : [kind];
    const found = rows.map(campaignFromRow).find((c) => kinds === null || kinds.includes(c.kind));
    return found ?? null;
  }

  async byId(id: string): Promise<CampaignRecord | null> {
    const rows = await this.db.query<Row>('SELECT * FROM campaigns WHERE id = ?', [id]);
    return rows[0] ? campaignFromRow(rows[0]) : null;
  }

  async list(projectId: string, kinds: CampaignRecord['kind'][], options: { limit: number; after?: string | undefined }): Promise<CampaignRecord[]> {
    const rows = await this.db.query<Row>(
      `SELECT * FROM campaigns WHERE project_id = ? AND kind IN (${kinds.map(() => '?').join(', ')}) AND id > ? ORDER BY id LIMIT ?`,
      [projectId, ...kinds, options.after ?? '', options.limit],
    );
    return rows.map(campaignFromRow);
  }

  /**
   * Changes a campaign only if it is still at `expectedVersion` and in one of `from` (compare and
   * set: two operators acting at once cannot both win). Runs `also` in the same transaction.
   */
  async change(
    id: string,
    expected: { version: number; from: readonly CampaignStatus[] },
    next: { status: CampaignStatus; definition?: CampaignDefinition; nextRunAt: number | null; at: number; history: { kind: string; detail: string; runId?: string | null } },
    also?: (tx: SqlExecutor) => Promise<void>,
  ): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const params: (string | number | null)[] = [next.status, next.nextRunAt, next.at];
      let setDefinition = '';
      if (next.definition) {
        setDefinition = ', definition = ?, name = ?';
        params.push(JSON.stringify(next.definition), next.definition.name);
      }
      const { changes } = await tx.run(
        `UPDATE campaigns SET status = ?, next_run_at = ?, updated_at = ?, version = version + 1${setDefinition}
         WHERE id = ? AND version = ? AND status IN (${expected.from.map(() => '?').join(', ')})`,
        [...params, id, expected.version, ...expected.from],
      );
      if (changes !== 1) return false;
      await addHistory(tx, id, next.history.runId ?? null, next.at, next.history.kind, next.history.detail);
      if (also) await also(tx);
      return true;
    });
  }

  async remove(id: string, version: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const { changes } = await tx.run("DELETE FROM campaigns WHERE id = ? AND version = ? AND status = 'draft'", [id, version]);
      if (changes === 1) await tx.run('DELETE FROM campaign_history WHERE campaign_id = ?', [id]);
      return changes === 1;
    });
  }

  /** A kind's campaigns that are running or paused (journeys: whose triggers and timers the runner serves). */
  async active(kind: CampaignRecord['kind']): Promise<CampaignRecord[]> {
    const rows = await this.db.query<Row>("SELECT * FROM campaigns WHERE kind = ? AND status IN ('running', 'paused') ORDER BY id", [kind]);
    return rows.map(campaignFromRow);
  }

  /** Campaigns whose next look is due. */
  async due(nowMs: number, limit: number): Promise<CampaignRecord[]> {
    const rows = await this.db.query<Row>('SELECT * FROM campaigns WHERE next_run_at IS NOT NULL AND next_run_at <= ? ORDER BY next_run_at LIMIT ?', [nowMs, limit]);
    return rows.map(campaignFromRow);
  }

  /** The earliest next look, for sleeping until then. */
  async nextDueAt(): Promise<number | null> {
    const rows = await this.db.query<Row>('SELECT MIN(next_run_at) AS t FROM campaigns WHERE next_run_at IS NOT NULL');
    return rows[0] ? readOptionalInt(rows[0].t) : null;
  }

  async liveRuns(): Promise<CampaignRun[]> {
    const rows = await this.db.query<Row>(
      `SELECT r.* FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id
       WHERE r.status IN ('materializing', 'sending') AND c.status <> 'paused' ORDER BY r.created_at`,
    );
    return rows.map(runFromRow);
  }

  async runs(campaignId: string): Promise<CampaignRun[]> {
    const rows = await this.db.query<Row>('SELECT * FROM campaign_runs WHERE campaign_id = ? ORDER BY occurrence_at', [campaignId]);
    return rows.map(runFromRow);
  }

  async run(id: string): Promise<CampaignRun | null> {
    const rows = await this.db.query<Row>('SELECT * FROM campaign_runs WHERE id = ?', [id]);
    return rows[0] ? runFromRow(rows[0]) : null;
  }

  /** Creates a run (once per campaign and occurrence) — call inside `change`'s `also`. */
  static async insertRun(tx: SqlExecutor, run: CampaignRun): Promise<boolean> {
    const { changes } = await tx.run(
      `INSERT INTO campaign_runs (id, project_id, campaign_id, occurrence_at, status, plan, cursor, targeted, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT DO NOTHING`,
      [run.id, run.projectId, run.campaignId, run.occurrenceAt, run.status, JSON.stringify(run.plan), JSON.stringify(run.cursor), run.createdAt, run.updatedAt],
    );
    return changes === 1;
  }

  /**
   * One fan-out step in ONE transaction: the batch's messages and the run's new cursor (I4). The
   * cursor is checked first: a step computed from a stale cursor (another worker got there) does
   * nothing. Returns how many recipients the batch targeted, or null if the cursor had moved.
   */
  async fanOutStep(
    run: CampaignRun,
    insert: Fragment | null,
    cursor: (inserted: number) => object,
    status: CampaignRun['status'],
    nowMs: number,
    history?: { kind: string; detail: string },
  ): Promise<number | null> {
    return this.db.transaction(async (tx) => {
      const rows = await tx.query<Row>(
        `SELECT r.cursor, r.status, c.status AS campaign_status FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id
         WHERE r.id = ?${this.rowLocks ? ' FOR UPDATE OF r' : ''}`,
        [run.id],
      );
      const row = rows[0];
      const stale = !row || String(row.status) !== 'materializing' || String(row.campaign_status) === 'paused';
      if (stale || JSON.stringify(readJson(row.cursor, {})) !== JSON.stringify(run.cursor)) return null;
      const inserted = insert ? (await tx.run(insert.text, insert.params)).changes : 0;
      await tx.run('UPDATE campaign_runs SET cursor = ?, targeted = targeted + ?, status = ?, updated_at = ? WHERE id = ?', [
        JSON.stringify(cursor(inserted)),
        inserted,
        status,
        nowMs,
        run.id,
      ]);
      if (history) await addHistory(tx, run.campaignId, run.id, nowMs, history.kind, history.detail);
      return inserted;
    });
  }

  /** Whether any message of the run is still queued or being sent. */
  async runHasLiveMessages(runId: string): Promise<boolean> {
    const rows = await this.db.query<Row>("SELECT 1 AS x FROM messages WHERE send_id = ? AND state IN ('queued', 'sending') LIMIT 1", [runId]);
    return rows.length > 0;
  }

  async setRunStatus(tx: SqlExecutor, runId: string, status: CampaignRun['status'], nowMs: number, extra: { pausedAt?: number | null; completed?: boolean } = {}): Promise<void> {
    await tx.run(
      `UPDATE campaign_runs SET status = ?, updated_at = ?${'pausedAt' in extra ? ', paused_at = ?' : ''}${extra.completed ? ', completed_at = ?' : ''} WHERE id = ?`,
      [status, nowMs, ...('pausedAt' in extra ? [extra.pausedAt ?? null] : []), ...(extra.completed ? [nowMs] : []), runId],
    );
  }

  /** Locks a campaign's runs (PostgreSQL) so that no fan-out step commits between an operator's check and change. */
  async lockRuns(tx: SqlExecutor, campaignId: string): Promise<CampaignRun[]> {
    const rows = await tx.query<Row>(`SELECT * FROM campaign_runs WHERE campaign_id = ?${this.rowLocks ? ' FOR UPDATE' : ''}`, [campaignId]);
    return rows.map(runFromRow);
  }

  static async setPausedAt(tx: SqlExecutor, runId: string, pausedAt: number | null): Promise<void> {
    await tx.run('UPDATE campaign_runs SET paused_at = ? WHERE id = ?', [pausedAt, runId]);
  }

  /** Holds a paused run's queued messages (never due), or shifts them back by the pause's length on resume. */
  static async holdMessages(tx: SqlExecutor, runId: string, shiftMs: number): Promise<number> {
    const where = shiftMs > 0 ? 'next_attempt_at < ?' : 'next_attempt_at >= ?';
    return (
      await tx.run(`UPDATE messages SET next_attempt_at = next_attempt_at + ? WHERE send_id = ? AND state = 'queued' AND ${where}`, [
        shiftMs,
        runId,
        PAUSE_SHIFT_MS,
      ])
    ).changes;
  }

  /** Cancels what a run has not sent yet, with the reason. */
  static async cancelMessages(tx: SqlExecutor, runId: string, reason: string, nowMs: number): Promise<number> {
    return (
      await tx.run(
        `UPDATE messages SET state = 'cancelled', error_code = 'CAMPAIGN_CANCELLED', reason = ?, updated_at = ? WHERE send_id = ? AND state = 'queued'`,
        [reason, nowMs, runId],
      )
    ).changes;
  }

  async history(campaignId: string, limit = 200): Promise<CampaignHistoryEntry[]> {
    const rows = await this.db.query<Row>('SELECT * FROM campaign_history WHERE campaign_id = ? ORDER BY id DESC LIMIT ?', [campaignId, limit]);
    return rows.reverse().map((r) => ({ at: readInt(r.at), runId: typeof r.run_id === 'string' ? r.run_id : null, kind: String(r.kind), detail: String(r.detail) }));
  }

  /** A history entry written inside the caller's transaction. */
  static async addHistoryIn(tx: SqlExecutor, campaignId: string, runId: string | null, at: number, kind: string, detail: string): Promise<void> {
    await addHistory(tx, campaignId, runId, at, kind, detail);
  }

  /** Message counts of a campaign's runs by state, variant and reason code. */
  async counts(campaignId: string): Promise<CountRow[]> {
    const rows = await this.db.query<Row>(
      `SELECT send_id, variant, state, error_code, COUNT(*) AS n FROM messages WHERE campaign_id = ?
       GROUP BY send_id, variant, state, error_code`,
      [campaignId],
    );
    return rows.map((r) => ({
      runId: String(r.send_id),
      variant: typeof r.variant === 'string' ? r.variant : null,
      state: String(r.state) as MessageState,
      code: typeof r.error_code === 'string' ? r.error_code : null,
      count: readInt(r.n),
    }));
  }

  /** The highest profile id now, the end of a wave's id range (profiles created later are not in it). */
  async maxProfileId(): Promise<number> {
    const rows = await this.db.query<Row>('SELECT MAX(id) AS m FROM profiles');
    return rows[0] ? readInt(rows[0].m) : 0;
  }

  /** The time zones the project's profiles name. */
  async zones(projectId: string): Promise<(string | null)[]> {
    const rows = await this.db.query<Row>('SELECT DISTINCT timezone FROM profiles WHERE project_id = ?', [projectId]);
    return rows.map((r) => (typeof r.timezone === 'string' ? r.timezone : null));
  }

  get executor(): SqlDb {
    return this.db;
  }
}

async function addHistory(tx: SqlExecutor, campaignId: string, runId: string | null, at: number, kind: string, detail: string): Promise<void> {
  await tx.run('INSERT INTO campaign_history (campaign_id, run_id, at, kind, detail) VALUES (?, ?, ?, ?, ?)', [campaignId, runId, at, kind, detail]);
}
