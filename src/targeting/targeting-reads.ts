import type { SqlExecutor } from '../storage/sql.ts';
import { readInt, readJson, readOptionalInt } from '../storage/sql.ts';
import { profileFromRow } from '../storage/sql-cell-store-reads.ts';
import type { ProfileFacts } from './evaluate-profile.ts';
import type { Segment } from './segment-model.ts';
import { DAY_MS, parseInstant } from './instant.ts';
import { estimateQuery, matchingProfilesQuery, needsTimeZones, type CompileContext } from './segment-sql.ts';
import type { TargetingDialect } from './sql-dialects.ts';
import type { Fragment } from './sql-fragment.ts';

type Row = Record<string, unknown>;

/** How a segment is evaluated: when ("now"), and how names it references resolve. */
export interface TargetingOptions {
  nowMs: number;
  /** A saved segment's tree by id or name. */
  resolveSegment?: ((ref: string) => Segment | undefined) | undefined;
  /** An audience's id by name; omitted: audience names are ids. */
  resolveAudience?: ((name: string) => string | undefined) | undefined;
  /** Profiles per streamed batch (default 5,000). */
  batchSize?: number | undefined;
}

export interface MatchedProfile {
  id: number;
  customId: string;
}

/** How many profiles a segment holds, and how many of them each channel can reach. */
export interface SegmentEstimate {
  total: number;
  reachable: { push: { any: number; ios: number; android: number; web: number }; email: number; sms: number };
}

/** Everything a compiled query needs: the tree's context plus the project's time zones when asked. */
export async function compileContext(db: SqlExecutor, projectId: string, segment: Segment, options: TargetingOptions): Promise<CompileContext> {
  const ctx: CompileContext = {
    projectId,
    nowMs: options.nowMs,
    resolveSegment: options.resolveSegment,
    resolveAudience: options.resolveAudience,
  };
  if (needsTimeZones(segment, options.resolveSegment)) {
    const rows = await db.query<Row>('SELECT DISTINCT timezone FROM profiles WHERE project_id = ?', [projectId]);
    ctx.timeZones = rows.map((r) => (typeof r.timezone === 'string' ? r.timezone : null));
  }
  return ctx;
}

export async function matchingQuery(db: SqlExecutor, dialect: TargetingDialect, projectId: string, segment: Segment, options: TargetingOptions): Promise<Fragment> {
  return matchingProfilesQuery(segment, dialect, await compileContext(db, projectId, segment, options));
}

export async function estimateSegment(
  db: SqlExecutor,
  dialect: TargetingDialect,
  projectId: string,
  segment: Segment,
  options: TargetingOptions,
): Promise<SegmentEstimate> {
  const q = estimateQuery(segment, dialect, await compileContext(db, projectId, segment, options));
  const [row] = await db.query<Row>(q.text, q.params);
  return estimateFromRow(row);
}

export function estimateFromRow(row: Row | undefined): SegmentEstimate {
  const n = (k: string): number => readInt(row?.[k] ?? 0);
  return {
    total: n('total'),
    reachable: { push: { any: n('push'), ios: n('push_ios'), android: n('push_android'), web: n('push_web') }, email: n('email'), sms: n('sms') },
  };
}

export const matchedFromRow = (r: Row): MatchedProfile => ({ id: readInt(r.id), customId: String(r.custom_id) });

/**
 * Everything the single-profile evaluator can ask about one profile, read from the store.
 * `eventNames` limits the events read to those a segment mentions (all when omitted).
 */
export async function loadProfileFacts(
  db: SqlExecutor,
  projectId: string,
  customId: string,
  options: { events?: ReadonlyMap<string, number | null> | undefined } = {},
): Promise<ProfileFacts | null> {
  const rows = await db.query<Row>(
    'SELECT id, project_id, custom_id, email, email_marketing, phone, sms_marketing, language, region, timezone, attributes, created_at, updated_at FROM profiles WHERE project_id = ? AND custom_id = ?',
    [projectId, customId],
  );
  if (!rows[0]) return null;
  const profile = profileFromRow(rows[0]);
  const id = profile.id!;
  // Only the events the segment looks at: each needed name from the earliest instant it needs
  // (events_profile_time reads just that range); everything when no segment says.
  const needs = options.events;
  const eventParams: (string | number)[] = [];
  let eventFilter = '';
  if (needs !== undefined) {
    const clauses = [...needs].map(([name, from]) => {
      eventParams.push(name);
      if (from === null) return '(name = ?)';
      eventParams.push(from);
      return '(name = ? AND time >= ?)';
    });
    eventFilter = clauses.length === 0 ? ' AND 1 = 0' : ` AND (${clauses.join(' OR ')})`;
  }
  const [installs, events, counts, suppressed, messages] = await Promise.all([
    db.query<Row>(
      'SELECT install_id, platform, push_enabled, push_reachable FROM installations WHERE project_id = ? AND profile_id = ?',
      [projectId, id],
    ),
    db.query<Row>(`SELECT name, time, attributes FROM events WHERE profile_id = ?${eventFilter}`, [id, ...eventParams]),
    db.query<Row>('SELECT name, count, first_at, last_at FROM event_counts WHERE profile_id = ?', [id]),
    db.query<Row>(
      "SELECT channel FROM suppressions WHERE project_id = ? AND ((channel = 'email' AND address = ?) OR (channel = 'sms' AND address = ?))",
      [projectId, profile.natives.email ?? '', profile.natives.phone ?? ''],
    ),
    db.query<Row>(
      'SELECT state, sent_at, created_at, opened_at, clicked_at, send_id, template_id, campaign_id, automation_id FROM messages WHERE project_id = ? AND custom_id = ?',
      [projectId, customId],
    ),
  ]);
  const installIds = installs.map((i) => String(i.install_id));
  const audiences = await db.query<Row>(
    `SELECT DISTINCT m.audience_id FROM audience_members m
     JOIN audience_versions av ON av.audience_id = m.audience_id AND av.live_version = m.version AND av.project_id = ?
     WHERE (m.kind = 'custom_id' AND m.member = ?)${installIds.length ? ` OR (m.kind = 'install_id' AND m.member IN (${installIds.map(() => '?').join(', ')}))` : ''}`,
    [projectId, customId, ...installIds],
  );
  const activities: ProfileFacts['messages'][number][] = [];
  for (const m of messages) {
    const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
    const source = {
      send: String(m.send_id),
      ...(text(m.template_id) !== undefined ? { template: text(m.template_id) } : {}),
      ...(text(m.campaign_id) !== undefined ? { campaign: text(m.campaign_id) } : {}),
      ...(text(m.automation_id) !== undefined ? { automation: text(m.automation_id) } : {}),
    };
    const sentAt = readOptionalInt(m.sent_at);
    if (m.state === 'sent' && sentAt !== null) activities.push({ activity: 'received', at: sentAt, ...source });
    if (m.state === 'suppressed') activities.push({ activity: 'suppressed', at: readInt(m.created_at), ...source });
    const opened = readOptionalInt(m.opened_at);
    if (opened !== null) activities.push({ activity: 'opened', at: opened, ...source });
    const clicked = readOptionalInt(m.clicked_at);
    if (clicked !== null) activities.push({ activity: 'clicked', at: clicked, ...source });
  }
  return {
    projectId,
    customId,
    natives: profile.natives,
    attributes: profile.attributes,
    installations: installs.map((i) => ({
      platform: String(i.platform) as 'ios' | 'android' | 'web',
      pushEnabled: i.push_enabled === true || i.push_enabled === 1,
      reachable: i.push_reachable === true || i.push_reachable === 1,
    })),
    emailSuppressed: suppressed.some((s) => s.channel === 'email'),
    phoneSuppressed: suppressed.some((s) => s.channel === 'sms'),
    events: events.map((e) => ({ name: String(e.name), time: readInt(e.time), attributes: readJson<Record<string, unknown> | null>(e.attributes, null) })),
    eventCounts: new Map(counts.map((c) => [String(c.name), { count: readInt(c.count), firstAt: readInt(c.first_at), lastAt: readInt(c.last_at) }])),
    audiences: new Set(audiences.map((a) => String(a.audience_id))),
    messages: activities,
  };
}

/**
 * Which events the single evaluator needs for a segment: per event name, the earliest instant any
 * of its conditions looks at (`null`: all of them). Conditions without a window or filters are
 * answered by the per-profile aggregate and need no events at all.
 */
export function eventNeeds(
  segment: Segment,
  nowMs: number,
  resolve?: (ref: string) => Segment | undefined,
  out = new Map<string, number | null>(),
  seen = new Set<string>(),
): Map<string, number | null> {
  const need = (name: string, from: number | null): void => {
    const had = out.get(name);
    out.set(name, had === null || from === null ? null : had === undefined ? from : Math.min(had, from));
  };
  if ('and' in segment) segment.and.forEach((s) => eventNeeds(s, nowMs, resolve, out, seen));
  else if ('or' in segment) segment.or.forEach((s) => eventNeeds(s, nowMs, resolve, out, seen));
  else if ('not' in segment) eventNeeds(segment.not, nowMs, resolve, out, seen);
  else if ('occurrence' in segment) {
    if (segment.where !== undefined && segment.where.length > 0) need(segment.event, null);
  } else if ('event' in segment) {
    const filtered = segment.where !== undefined && segment.where.length > 0;
    const w = segment.window;
    if (w === undefined) {
      if (filtered) need(segment.event, null);
    } else need(segment.event, 'last_days' in w ? nowMs - w.last_days * DAY_MS : (parseInstant(w.from) ?? 0));
  } else if ('segment' in segment && resolve && !seen.has(segment.segment)) {
    seen.add(segment.segment);
    const saved = resolve(segment.segment);
    if (saved) eventNeeds(saved, nowMs, resolve, out, seen);
  }
  return out;
}
