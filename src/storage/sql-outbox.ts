import type { Engagement } from './cell-store.ts';
import type { Category, Channel, MessageContent } from '../delivery/delivery-model.ts';
import type { Platform, WebPushSubscription } from '../profiles/profile-model.ts';
import type {
  MessageEvent,
  MessagePage,
  MessageState,
  MessageUpdate,
  NewMessage,
  OutboxMessage,
  OutboxStore,
  SendReport,
  SendRow,
} from './outbox-port.ts';
import { MESSAGE_STATES } from './outbox-port.ts';
import type { SqlDb, SqlExecutor } from './sql.ts';
import { readInt, readJson, readOptionalInt } from './sql.ts';

type Row = Record<string, unknown>;
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export function messageFromRow(r: Row): OutboxMessage {
  return {
    id: String(r.id),
    projectId: String(r.project_id),
    sendId: String(r.send_id),
    idempotencyKey: String(r.idempotency_key),
    channel: String(r.channel) as Channel,
    category: String(r.category) as Category,
    lane: readInt(r.lane),
    customId: str(r.custom_id),
    installId: str(r.install_id),
    platform: str(r.platform) as Platform | null,
    recipient: String(r.recipient),
    webPush: readJson<WebPushSubscription | null>(r.web_push, null),
    content: readJson<MessageContent>(r.content, { body: '' }),
    state: String(r.state) as MessageState,
    reason: str(r.reason),
    errorCode: str(r.error_code),
    attempts: readInt(r.attempts),
    nextAttemptAt: readInt(r.next_attempt_at),
    leaseOwner: str(r.lease_owner),
    leaseUntil: readOptionalInt(r.lease_until),
    providerKind: str(r.provider_kind),
    providerMessageId: str(r.provider_message_id),
    expiresAt: readOptionalInt(r.expires_at),
    details: readJson<Record<string, unknown> | null>(r.details, null),
    createdAt: readInt(r.created_at),
    updatedAt: readInt(r.updated_at),
    sentAt: readOptionalInt(r.sent_at),
    variant: str(r.variant),
    render: readJson<Record<string, unknown> | null>(r.render, null),
    campaignId: str(r.campaign_id),
  };
}

export const INSERT_MESSAGE_SQL = `INSERT INTO messages (id, project_id, send_id, idempotency_key, channel, category, lane, custom_id,
  install_id, platform, recipient, web_push, content, state, reason, error_code, attempts, next_attempt_at, expires_at,
  created_at, updated_at, template_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`;

export function messageParams(m: NewMessage): (string | number | null)[] {
  return [
    m.id, m.projectId, m.sendId, m.idempotencyKey, m.channel, m.category, m.lane, m.customId, m.installId, m.platform,
    m.recipient, m.webPush ? JSON.stringify(m.webPush) : null, JSON.stringify(m.content), m.state, m.reason, m.errorCode,
    m.createdAt, m.expiresAt, m.createdAt, m.createdAt, m.templateId ?? null,
  ];
}

export const INSERT_SEND_SQL =
  'INSERT INTO sends (id, project_id, channel, category, source, summary, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING';

export function sendParams(s: SendRow): (string | number)[] {
  return [s.id, s.projectId, s.channel, s.category, s.source, JSON.stringify(s.summary), s.createdAt];
}

const EARLIEST = (col: string) => `${col} = CASE WHEN ${col} IS NULL OR ${col} > ? THEN ? ELSE ${col} END`;

/**
 * Opens and clicks as portable statements: the earliest of each is kept, a click counts as an
 * open too, and a message of another project is never touched (I10).
 */
export function engagementStatements(list: readonly Engagement[]): [string, (string | number)[]][] {
  const earliest = new Map<string, Engagement>();
  for (const e of list) {
    const k = `${e.projectId}\u0000${e.messageId}\u0000${e.type}`;
    const seen = earliest.get(k);
    if (!seen || e.atMs < seen.atMs) earliest.set(k, e);
  }
  return [...earliest.values()].map((e) =>
    e.type === 'opened'
      ? [`UPDATE messages SET ${EARLIEST('opened_at')} WHERE id = ? AND project_id = ?`, [e.atMs, e.atMs, e.messageId, e.projectId]]
      : [`UPDATE messages SET ${EARLIEST('clicked_at')}, ${EARLIEST('opened_at')} WHERE id = ? AND project_id = ?`, [e.atMs, e.atMs, e.atMs, e.atMs, e.messageId, e.projectId]],
  );
}

/** The first history entry of a message created in a given state. */
export const INSERT_EVENT_SQL = 'INSERT INTO message_events (message_id, at, state, code, detail) VALUES (?, ?, ?, ?, ?)';

/**
 * The outbox over the portable SQL port. The only backend difference is how a claim locks:
 * `FOR UPDATE SKIP LOCKED` where the backend has it (several dispatchers claim side by side),
 * a plain subquery on SQLite (one writer at a time anyway).
 */
export class SqlOutbox implements OutboxStore {
  constructor(
    private readonly db: SqlDb,
    private readonly skipLocked: boolean,
  ) {}

  async claimMessages(owner: string, nowMs: number, leaseMs: number, limit: number): Promise<OutboxMessage[]> {
    const lock = this.skipLocked ? ' FOR UPDATE SKIP LOCKED' : '';
    return this.db.transaction(async (tx) => {
      // I4: a dispatcher that died leaves leases behind; they expire and the messages go back to the queue.
      // The candidates are picked once, in a materialised CTE: as a plain `IN (subquery)`,
      // PostgreSQL may re-run the limited subquery per row and take more rows than the limit.
      await tx.run(
        `WITH expired AS MATERIALIZED (SELECT id FROM messages WHERE state = 'sending' AND lease_until < ? LIMIT 1000${lock})
         UPDATE messages SET state = 'queued', lease_owner = NULL, lease_until = NULL, updated_at = ?
         WHERE id IN (SELECT id FROM expired)`,
        [nowMs, nowMs],
      );
      const rows = await tx.query<Row>(
        `WITH due AS MATERIALIZED (SELECT id FROM messages WHERE state = 'queued' AND next_attempt_at <= ?
                                   ORDER BY lane, next_attempt_at LIMIT ?${lock})
         UPDATE messages SET state = 'sending', lease_owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?
         WHERE id IN (SELECT id FROM due)
         RETURNING *`,
        [nowMs, limit, owner, nowMs + leaseMs, nowMs],
      );
      return rows.map(messageFromRow).sort((a, b) => a.lane - b.lane || a.nextAttemptAt - b.nextAttemptAt);
    });
  }

  /**
   * Settles a batch set-based: per chunk of outcomes, one guarded UPDATE over all of them and one
   * INSERT of their history, instead of two statements per message (a round trip each on PostgreSQL).
   */
  async settleMessages(updates: readonly MessageUpdate[]): Promise<{ applied: number; lostLeases: number }> {
    if (updates.length === 0) return { applied: 0, lostLeases: 0 };
    // Rows are locked in id order, as lease renewal locks them: two dispatcher calls updating the
    // same messages cannot deadlock (PostgreSQL; SQLite has one writer).
    const ordered = this.skipLocked ? [...updates].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) : updates;
    return this.db.transaction(async (tx) => {
      let applied = 0;
      for (const chunk of settleChunks(ordered)) {
        if (this.skipLocked) await tx.query(`SELECT id FROM messages WHERE id IN (${chunk.map(() => '?').join(', ')}) ORDER BY id FOR UPDATE`, chunk.map((u) => u.id));
        // Only the outcomes whose lease still holds come back: whoever holds the others now decides.
        const rows = await tx.query<Row>(settleSql(chunk.length, this.skipLocked ? '' : SQLITE_PK_HINT), chunk.flatMap(settleParams));
        const settled = new Set(rows.map((r) => String(r.id)));
        const done = chunk.filter((u) => settled.has(u.id));
        applied += done.length;
        // A hand-back (not attempted) leaves no trace in the history; every attempt's outcome does.
        const history = done.filter((u) => !u.handBack);
        if (history.length > 0) {
          // INSERT_EVENT_SQL with one more VALUES row per further entry.
          await tx.run(
            INSERT_EVENT_SQL + ', (?, ?, ?, ?, ?)'.repeat(history.length - 1),
            history.flatMap((u) => [u.id, u.at, u.state, u.errorCode, u.reason]),
          );
        }
        for (const u of done) if (u.effect) await applyEffect(tx, u);
      }
      return { applied, lostLeases: updates.length - applied };
    });
  }

  async renewLeases(owner: string, ids: readonly string[], untilMs: number): Promise<number> {
    let renewed = 0;
    const sorted = [...ids].sort();
    // In id order, locking first, as settling does (no deadlock between the two on PostgreSQL).
    const locked = (list: string): string => (this.skipLocked ? `(SELECT id FROM messages WHERE id IN ${list} ORDER BY id FOR UPDATE)` : list);
    for (let i = 0; i < sorted.length; i += 500) {
      const chunk = sorted.slice(i, i + 500);
      const { changes } = await this.db.run(
        `UPDATE messages SET lease_until = ? WHERE lease_owner = ? AND state = 'sending' AND id IN ${locked(`(${chunk.map(() => '?').join(', ')})`)}`,
        [untilMs, owner, ...chunk],
      );
      renewed += changes;
    }
    return renewed;
  }

  async releaseLeases(owner: string, nowMs: number): Promise<number> {
    const { changes } = await this.db.run(
      `UPDATE messages SET state = 'queued', lease_owner = NULL, lease_until = NULL, attempts = attempts - 1, updated_at = ?
       WHERE state = 'sending' AND lease_owner = ?`,
      [nowMs, owner],
    );
    return changes;
  }

  async countDue(nowMs: number): Promise<number> {
    const rows = await this.db.query<Row>("SELECT COUNT(*) AS n FROM messages WHERE state = 'queued' AND next_attempt_at <= ?", [nowMs]);
    return rows[0] ? readInt(rows[0].n) : 0;
  }

  async recordReceipt(projectId: string, providerKind: string, providerMessageId: string, status: string, atMs: number): Promise<boolean> {
    const rows = await this.db.query<Row>(
      'SELECT id, state FROM messages WHERE provider_message_id = ? AND project_id = ? AND provider_kind = ?',
      [providerMessageId, projectId, providerKind],
    );
    const row = rows[0];
    if (!row) return false;
    await this.db.run(INSERT_EVENT_SQL, [String(row.id), atMs, String(row.state), `RECEIPT_${status.toUpperCase()}`, `the provider reported: ${status}`]);
    return true;
  }

  async getSend(projectId: string, sendId: string): Promise<SendReport | null> {
    const sends = await this.db.query<Row>('SELECT * FROM sends WHERE id = ? AND project_id = ?', [sendId, projectId]);
    const row = sends[0];
    if (!row) return null;
    const counts = Object.fromEntries(MESSAGE_STATES.map((s) => [s, 0])) as Record<MessageState, number>;
    for (const r of await this.db.query<Row>('SELECT state, COUNT(*) AS n FROM messages WHERE send_id = ? GROUP BY state', [sendId])) {
      counts[String(r.state) as MessageState] = readInt(r.n);
    }
    return {
      send: {
        id: String(row.id),
        projectId: String(row.project_id),
        channel: String(row.channel) as Channel,
        category: String(row.category) as Category,
        source: String(row.source),
        summary: readJson(row.summary, {}),
        createdAt: readInt(row.created_at),
      },
      counts,
    };
  }

  async listMessages(
    projectId: string,
    filter: { customId?: string; sendId?: string; limit: number; cursor?: string | undefined },
  ): Promise<MessagePage> {
    const where = ['project_id = ?'];
    const params: (string | number)[] = [projectId];
    if (filter.customId !== undefined) {
      where.push('custom_id = ?');
      params.push(filter.customId);
    }
    if (filter.sendId !== undefined) {
      where.push('send_id = ?');
      params.push(filter.sendId);
    }
    const cursor = decodeCursor(filter.cursor);
    if (cursor) {
      where.push('(created_at < ? OR (created_at = ? AND id < ?))');
      params.push(cursor.createdAt, cursor.createdAt, cursor.id);
    }
    const rows = await this.db.query<Row>(
      `SELECT * FROM messages WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT ?`,
      [...params, filter.limit + 1],
    );
    const page = rows.slice(0, filter.limit).map(messageFromRow);
    const history = new Map<string, MessageEvent[]>();
    if (page.length > 0) {
      const marks = page.map(() => '?').join(', ');
      for (const e of await this.db.query<Row>(
        `SELECT message_id, at, state, code, detail FROM message_events WHERE message_id IN (${marks}) ORDER BY id`,
        page.map((m) => m.id),
      )) {
        const list = history.get(String(e.message_id)) ?? [];
        list.push({ at: readInt(e.at), state: String(e.state) as MessageState, code: str(e.code), detail: str(e.detail) });
        history.set(String(e.message_id), list);
      }
    }
    const last = page.at(-1);
    return {
      messages: page.map((m) => ({ ...m, history: history.get(m.id) ?? [] })),
      next: rows.length > filter.limit && last ? Buffer.from(`${last.createdAt}:${last.id}`).toString('base64url') : null,
    };
  }
}

/** Outcomes settled per statement: 12 parameters each stays far below both backends' limits. */
const SETTLE_CHUNK = 100;

/**
 * Splits a batch into chunks settled in order. A message appears at most once per chunk: an UPDATE
 * joined to two outcomes for one row applies either of them, and the returned ids could not say
 * which, so a repeat starts the next chunk and sees what the first one left, as one by one.
 */
function settleChunks(updates: readonly MessageUpdate[]): MessageUpdate[][] {
  const chunks: MessageUpdate[][] = [];
  let chunk: MessageUpdate[] = [];
  let ids = new Set<string>();
  for (const u of updates) {
    if (chunk.length === SETTLE_CHUNK || ids.has(u.id)) {
      chunks.push(chunk);
      chunk = [];
      ids = new Set();
    }
    chunk.push(u);
    ids.add(u.id);
  }
  chunks.push(chunk);
  return chunks;
}

/**
 * The rows of `v`, one per outcome. PostgreSQL types a bare `?` in VALUES as text, so the integer
 * columns cast theirs. `details` is jsonb there but text on SQLite, and no cast is spelled the same
 * on both, so the first row borrows the column's own type from an empty subquery and PostgreSQL
 * gives it to the whole VALUES column (SQLite just reads NULL).
 */
function settleValues(n: number): string {
  const row = (details: string) =>
    `(?, ?, CAST(? AS INTEGER), ?, ?, ?, CAST(? AS BIGINT), ?, ?, ${details}, CAST(? AS BIGINT), CAST(? AS INTEGER))`;
  return [row('COALESCE(?, (SELECT details FROM messages WHERE 0 = 1))'), ...Array<string>(n - 1).fill(row('?'))].join(', ');
}

/**
 * One guarded UPDATE for `n` outcomes, returning the ids it settled (UPDATE … FROM and RETURNING
 * need SQLite 3.35). `v.` and `messages.` are spelled out because the two share column names.
 */
/**
 * SQLite: settle through the primary key. Its planner otherwise may, on statistics taken while few
 * messages were in flight, scan every `sending` message once per settle statement (20× slower).
 */
const SQLITE_PK_HINT = ' INDEXED BY sqlite_autoindex_messages_1';

function settleSql(n: number, hint: string): string {
  return `WITH v (id, owner, claimed, state, reason, error_code, next_attempt_at, provider_kind, provider_message_id, details, at, uncount)
      AS (VALUES ${settleValues(n)})
    UPDATE messages${hint} SET state = v.state, reason = v.reason, error_code = v.error_code,
      next_attempt_at = COALESCE(v.next_attempt_at, messages.next_attempt_at),
      provider_kind = COALESCE(v.provider_kind, messages.provider_kind),
      provider_message_id = COALESCE(v.provider_message_id, messages.provider_message_id),
      details = COALESCE(v.details, messages.details), lease_owner = NULL, lease_until = NULL, updated_at = v.at,
      attempts = messages.attempts - v.uncount,
      sent_at = CASE WHEN v.state = 'sent' THEN v.at ELSE messages.sent_at END
    FROM v
    WHERE messages.id = v.id AND messages.lease_owner = v.owner AND messages.state = 'sending' AND messages.attempts = v.claimed
    RETURNING messages.id`;
}

/** One outcome's row of `v`, in its column order. */
function settleParams(u: MessageUpdate): (string | number | null)[] {
  return [
    u.id, u.owner, u.claimedAttempt, u.state, u.reason, u.errorCode, u.nextAttemptAt ?? null, u.providerKind ?? null,
    u.providerMessageId ?? null, u.details ? JSON.stringify(u.details) : null, u.at, u.uncountAttempt || u.handBack ? 1 : 0,
  ];
}

function decodeCursor(cursor: string | undefined): { createdAt: number; id: string } | null {
  if (!cursor) return null;
  const m = /^(\d+):(.+)$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return m ? { createdAt: Number(m[1]), id: m[2]! } : null;
}

/** What a rejected recipient means for the data Herald keeps, so it stops trying (issue 3, part 7). */
async function applyEffect(tx: SqlExecutor, u: MessageUpdate): Promise<void> {
  const { projectId, installId, customId, recipient, channel } = u.target;
  const reason = u.errorCode ?? 'rejected';
  switch (u.effect) {
    case 'disable-token':
      if (installId) {
        await tx.run('UPDATE installations SET push_disabled_reason = ? WHERE project_id = ? AND install_id = ?', [reason, projectId, installId]);
      }
      return;
    case 'remove-subscription':
      if (installId) {
        await tx.run('UPDATE installations SET web_push = NULL, push_disabled_reason = ? WHERE project_id = ? AND install_id = ?', [
          reason,
          projectId,
          installId,
        ]);
      }
      return;
    case 'suppress-address':
      await tx.run(
        'INSERT INTO suppressions (project_id, channel, address, reason, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
        [projectId, channel, recipient, `hard bounce (${reason})`, u.at],
      );
      return;
    case 'unsubscribe-sms':
      await tx.run(
        'INSERT INTO suppressions (project_id, channel, address, reason, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
        [projectId, 'sms', recipient, `the recipient opted out (${reason})`, u.at],
      );
      if (customId) {
        await tx.run("UPDATE profiles SET sms_marketing = 'unsubscribed', updated_at = ? WHERE project_id = ? AND custom_id = ?", [
          u.at,
          projectId,
          customId,
        ]);
      }
      return;
    case 'disable-endpoint':
    case undefined:
      return; // endpoints are provider configuration: the dispatcher disables them in the control plane
  }
}
