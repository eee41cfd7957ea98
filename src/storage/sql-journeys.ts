import type { JourneyDefinition } from '../orchestration/journey-model.ts';
import type { SqlExecutor } from './sql.ts';
import { readInt, readJson, readOptionalInt } from './sql.ts';

type Row = Record<string, unknown>;

export type EnrollmentState = 'active' | 'waiting' | 'waiting_event' | 'done' | 'exited' | 'expired' | 'cancelled';

/** One user's way through one journey version. */
export interface Enrollment {
  id: string;
  projectId: string;
  journeyId: string;
  version: number;
  customId: string;
  entryKey: string;
  stepId: string | null;
  state: EnrollmentState;
  dueAt: number | null;
  waitSince: number | null;
  /** The triggering event's attributes (templates see them as `data`). */
  data: Record<string, unknown>;
  enteredAt: number;
  updatedAt: number;
}

/** An applied event, as triggers read it. */
export interface TriggerEvent {
  id: number;
  projectId: string;
  customId: string;
  timezone: string | null;
  name: string;
  timeMs: number;
  receivedAt: number;
  attributes: Record<string, unknown> | null;
}

const enrollmentFromRow = (r: Row): Enrollment => ({
  id: String(r.id),
  projectId: String(r.project_id),
  journeyId: String(r.journey_id),
  version: readInt(r.version),
  customId: String(r.custom_id),
  entryKey: String(r.entry_key),
  stepId: typeof r.step_id === 'string' ? r.step_id : null,
  state: String(r.state) as EnrollmentState,
  dueAt: readOptionalInt(r.due_at),
  waitSince: readOptionalInt(r.wait_since),
  data: readJson<Record<string, unknown>>(r.data, {}),
  enteredAt: readInt(r.entered_at),
  updatedAt: readInt(r.updated_at),
});

export const LIVE_STATES = ['waiting', 'waiting_event'] as const;

/**
 * Journeys' durable state over the portable SQL port: versions, enrollments (whose `due_at` is the
 * durable timer), per-step counts, the trigger cursor. Functions take the transaction they run in,
 * so a trigger batch's enrollments, steps, messages and cursor commit together (I4).
 */
export const JourneySql = {
  async putVersion(tx: SqlExecutor, journeyId: string, definition: JourneyDefinition, nowMs: number): Promise<number> {
    const rows = await tx.query<Row>('SELECT COALESCE(MAX(version), 0) AS v FROM journey_versions WHERE journey_id = ?', [journeyId]);
    const version = readInt(rows[0]?.v) + 1;
    await tx.run('INSERT INTO journey_versions (journey_id, version, definition, created_at) VALUES (?, ?, ?, ?)', [journeyId, version, JSON.stringify(definition), nowMs]);
    return version;
  },

  async versions(tx: SqlExecutor, journeyId: string): Promise<{ version: number; definition: JourneyDefinition; createdAt: number }[]> {
    const rows = await tx.query<Row>('SELECT * FROM journey_versions WHERE journey_id = ? ORDER BY version', [journeyId]);
    return rows.map((r) => ({ version: readInt(r.version), definition: readJson<JourneyDefinition>(r.definition, {} as JourneyDefinition), createdAt: readInt(r.created_at) }));
  },

  async cursor(tx: SqlExecutor, name: string): Promise<number | null> {
    const rows = await tx.query<Row>('SELECT position FROM orchestrator_cursors WHERE name = ?', [name]);
    return rows[0] ? readInt(rows[0].position) : null;
  },

  async setCursor(tx: SqlExecutor, name: string, position: number, nowMs: number): Promise<void> {
    await tx.run(
      `INSERT INTO orchestrator_cursors (name, position, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
      [name, position, nowMs],
    );
  },

  async maxEventId(tx: SqlExecutor): Promise<number> {
    const rows = await tx.query<Row>('SELECT COALESCE(MAX(id), 0) AS m FROM events');
    return readInt(rows[0]?.m);
  },

  /** Applied events after `afterId`, in id order, with their profile. */
  async eventsAfter(tx: SqlExecutor, afterId: number, limit: number): Promise<TriggerEvent[]> {
    const rows = await tx.query<Row>(
      `SELECT e.id, e.name, e.time, e.received_at, e.attributes, p.project_id, p.custom_id, p.timezone
       FROM events e JOIN profiles p ON p.id = e.profile_id WHERE e.id > ? ORDER BY e.id LIMIT ?`,
      [afterId, limit],
    );
    return rows.map((r) => ({
      id: readInt(r.id),
      projectId: String(r.project_id),
      customId: String(r.custom_id),
      timezone: typeof r.timezone === 'string' ? r.timezone : null,
      name: String(r.name),
      timeMs: readInt(r.time),
      receivedAt: readInt(r.received_at),
      attributes: readJson<Record<string, unknown> | null>(r.attributes, null),
    }));
  },

  async insertEnrollment(tx: SqlExecutor, e: Enrollment): Promise<boolean> {
    const { changes } = await tx.run(
      `INSERT INTO journey_enrollments (id, project_id, journey_id, version, custom_id, entry_key, step_id, state, due_at, wait_since, data, entered_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      [e.id, e.projectId, e.journeyId, e.version, e.customId, e.entryKey, e.stepId, e.state, e.dueAt, e.waitSince, JSON.stringify(e.data), e.enteredAt, e.updatedAt],
    );
    return changes === 1;
  },

  /** When the user last entered this journey (for once-per-window re-entry), or null. */
  async lastEntry(tx: SqlExecutor, journeyId: string, customId: string): Promise<{ at: number; live: boolean } | null> {
    const rows = await tx.query<Row>(
      'SELECT entered_at, state FROM journey_enrollments WHERE journey_id = ? AND custom_id = ? ORDER BY entered_at DESC LIMIT 1',
      [journeyId, customId],
    );
    const r = rows[0];
    return r ? { at: readInt(r.entered_at), live: (LIVE_STATES as readonly string[]).includes(String(r.state)) } : null;
  },

  /** The user's enrollments that are still inside a journey (waiting on a timer or an event). */
  async liveOf(tx: SqlExecutor, projectId: string, customId: string): Promise<Enrollment[]> {
    const rows = await tx.query<Row>(
      "SELECT * FROM journey_enrollments WHERE project_id = ? AND custom_id = ? AND state IN ('waiting', 'waiting_event')",
      [projectId, customId],
    );
    return rows.map(enrollmentFromRow);
  },

  /** Enrollments whose timer is due, of journeys that are running. */
  async due(tx: SqlExecutor, nowMs: number, limit: number): Promise<Enrollment[]> {
    const rows = await tx.query<Row>(
      `SELECT e.* FROM journey_enrollments e JOIN campaigns c ON c.id = e.journey_id
       WHERE e.state IN ('waiting', 'waiting_event') AND e.due_at <= ? AND c.status = 'running' ORDER BY e.due_at LIMIT ?`,
      [nowMs, limit],
    );
    return rows.map(enrollmentFromRow);
  },

  /** Moves an enrollment on, only if it is still where the caller read it (compare and set). */
  async move(
    tx: SqlExecutor,
    e: Enrollment,
    next: { stepId: string | null; state: EnrollmentState; dueAt: number | null; waitSince: number | null },
    nowMs: number,
  ): Promise<boolean> {
    const { changes } = await tx.run(
      `UPDATE journey_enrollments SET step_id = ?, state = ?, due_at = ?, wait_since = ?, updated_at = ?
       WHERE id = ? AND state = ? AND COALESCE(step_id, '') = ? AND COALESCE(due_at, -1) = ?`,
      [next.stepId, next.state, next.dueAt, next.waitSince, nowMs, e.id, e.state, e.stepId ?? '', e.dueAt ?? -1],
    );
    return changes === 1;
  },

  async count(tx: SqlExecutor, journeyId: string, stepId: string, outcome: string, by = 1): Promise<void> {
    await tx.run(
      `INSERT INTO journey_step_counts (journey_id, step_id, outcome, count) VALUES (?, ?, ?, ?)
       ON CONFLICT (journey_id, step_id, outcome) DO UPDATE SET count = journey_step_counts.count + excluded.count`,
      [journeyId, stepId, outcome, by],
    );
  },

  async stepCounts(tx: SqlExecutor, journeyId: string): Promise<{ stepId: string; outcome: string; count: number }[]> {
    const rows = await tx.query<Row>('SELECT step_id, outcome, count FROM journey_step_counts WHERE journey_id = ?', [journeyId]);
    return rows.map((r) => ({ stepId: String(r.step_id), outcome: String(r.outcome), count: readInt(r.count) }));
  },

  async enrollmentStates(tx: SqlExecutor, journeyId: string): Promise<Record<string, number>> {
    const rows = await tx.query<Row>('SELECT state, COUNT(*) AS n FROM journey_enrollments WHERE journey_id = ? GROUP BY state', [journeyId]);
    return Object.fromEntries(rows.map((r) => [String(r.state), readInt(r.n)]));
  },

  /** Cancels a user's queued messages from a journey (an exit event stops what is pending). */
  async cancelQueued(tx: SqlExecutor, journeyId: string, customId: string, reason: string, nowMs: number): Promise<number> {
    return (
      await tx.run(
        "UPDATE messages SET state = 'cancelled', error_code = 'JOURNEY_EXITED', reason = ?, updated_at = ? WHERE campaign_id = ? AND custom_id = ? AND state = 'queued'",
        [reason, nowMs, journeyId, customId],
      )
    ).changes;
  },

  /** Ends every live enrollment of a journey (stopped by an operator). */
  async cancelAll(tx: SqlExecutor, journeyId: string, nowMs: number): Promise<number> {
    return (
      await tx.run("UPDATE journey_enrollments SET state = 'cancelled', due_at = NULL, updated_at = ? WHERE journey_id = ? AND state IN ('waiting', 'waiting_event')", [nowMs, journeyId])
    ).changes;
  },

  async profileZone(tx: SqlExecutor, projectId: string, customId: string): Promise<string | null> {
    const rows = await tx.query<Row>('SELECT timezone FROM profiles WHERE project_id = ? AND custom_id = ?', [projectId, customId]);
    return typeof rows[0]?.timezone === 'string' ? rows[0].timezone : null;
  },

  async segmentMembers(tx: SqlExecutor, journeyId: string): Promise<Set<number>> {
    const rows = await tx.query<Row>('SELECT profile_id FROM journey_segment_members WHERE journey_id = ?', [journeyId]);
    return new Set(rows.map((r) => readInt(r.profile_id)));
  },

  async setSegmentMembers(tx: SqlExecutor, journeyId: string, added: readonly number[], removed: readonly number[]): Promise<void> {
    for (let i = 0; i < added.length; i += 500) {
      const chunk = added.slice(i, i + 500);
      await tx.run(`INSERT INTO journey_segment_members (journey_id, profile_id) VALUES ${chunk.map(() => '(?, ?)').join(', ')} ON CONFLICT DO NOTHING`, chunk.flatMap((id) => [journeyId, id]));
    }
    for (let i = 0; i < removed.length; i += 500) {
      const chunk = removed.slice(i, i + 500);
      await tx.run(`DELETE FROM journey_segment_members WHERE journey_id = ? AND profile_id IN (${chunk.map(() => '?').join(', ')})`, [journeyId, ...chunk]);
    }
  },
};
