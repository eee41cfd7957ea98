import { anniversariesToday, DAY_MS, parseInstant } from './instant.ts';
import type {
  AttributeCondition,
  EventCondition,
  MessageCondition,
  NativeCondition,
  OccurrenceCondition,
  ReachableCondition,
  Segment,
  Window,
} from './segment-model.ts';
import { type Fragment, join, list, raw, sql } from './sql-fragment.ts';
import type { TargetingDialect } from './sql-dialects.ts';

/**
 * The bulk evaluator's compiler (issue 4, part 2a): a segment tree becomes one boolean SQL
 * expression over `profiles p`, with the same meaning as `evaluateSegment` for every profile —
 * the property test in test/targeting-agreement.test.ts holds the two to it on both backends.
 *
 * Shape of the SQL (see ADR 0008 for the indexes it relies on):
 * - attribute and native conditions are expressions on the profile row;
 * - event, occurrence, reachability, audience and message conditions are `p.id IN (subquery)`
 *   with an uncorrelated subquery, which both SQLite and PostgreSQL evaluate once (a hashed
 *   set) however many profiles the outer query reads;
 * - every leaf is wrapped in COALESCE(…, FALSE), so SQL's unknown never leaks into `not`.
 */

/** What compiling needs besides the tree. */
export interface CompileContext {
  projectId: string;
  nowMs: number;
  /** A saved segment's tree by id or name; unknown → the reference matches nobody. */
  resolveSegment?: ((ref: string) => Segment | undefined) | undefined;
  /** An audience's id by name; unknown → nobody is in it. */
  resolveAudience?: ((name: string) => string | undefined) | undefined;
  /** The distinct time zones of the project's profiles (only needed for `anniversary_today`). */
  timeZones?: readonly (string | null)[] | undefined;
}

const FALSE = raw('(1 = 0)');
const NATIVE_COLUMNS: Record<NativeCondition['native'], string> = {
  language: 'p.language',
  region: 'p.region',
  timezone: 'p.timezone',
  email_marketing: 'p.email_marketing',
  sms_marketing: 'p.sms_marketing',
};

const ORDER_OPS = { gt: '>', gte: '>=', lt: '<', lte: '<=' } as const;

/** Does any node of the tree (saved segments followed) need the project's time zones? */
export function needsTimeZones(segment: Segment, resolve?: (ref: string) => Segment | undefined, seen = new Set<string>()): boolean {
  if ('and' in segment) return segment.and.some((s) => needsTimeZones(s, resolve, seen));
  if ('or' in segment) return segment.or.some((s) => needsTimeZones(s, resolve, seen));
  if ('not' in segment) return needsTimeZones(segment.not, resolve, seen);
  if ('attribute' in segment) return segment.op === 'anniversary_today';
  if ('event' in segment && 'where' in segment && segment.where) return segment.where.some((w) => w.op === 'anniversary_today');
  if ('segment' in segment && resolve && !seen.has(segment.segment)) {
    seen.add(segment.segment);
    const saved = resolve(segment.segment);
    return saved !== undefined && needsTimeZones(saved, resolve, seen);
  }
  return false;
}

/** Compiles a segment to a boolean expression over `profiles p`. */
export function compileSegment(segment: Segment, dialect: TargetingDialect, ctx: CompileContext): Fragment {
  return new SegmentCompiler(dialect, ctx).node(segment, 0);
}

/** The whole query: matching profiles of the project, in id order. */
export function matchingProfilesQuery(segment: Segment, dialect: TargetingDialect, ctx: CompileContext): Fragment {
  return sql`SELECT p.id, p.custom_id FROM profiles p WHERE p.project_id = ${ctx.projectId} AND ${compileSegment(segment, dialect, ctx)} ORDER BY p.id`;
}

/**
 * Count and reachability per channel of the matching profiles, in one pass over them: each
 * channel's reachable set is built once from installations_reachable (read alone) and probed per
 * profile. (Grouping installations per profile and joining was slower: SQLite walked them in
 * profile order, reading every row.)
 */
export function estimateQuery(segment: Segment, dialect: TargetingDialect, ctx: CompileContext): Fragment {
  const c = new SegmentCompiler(dialect, ctx);
  const where = c.node(segment, 0);
  const sum = (f: Fragment): Fragment => sql`COALESCE(SUM(CASE WHEN ${f} THEN 1 ELSE 0 END), 0)`;
  return sql`SELECT COUNT(*) AS total,
    ${sum(c.reachable({ reachable: 'push' }))} AS push,
    ${sum(c.reachable({ reachable: 'push', platform: 'ios' }))} AS push_ios,
    ${sum(c.reachable({ reachable: 'push', platform: 'android' }))} AS push_android,
    ${sum(c.reachable({ reachable: 'push', platform: 'web' }))} AS push_web,
    ${sum(c.reachable({ reachable: 'email' }))} AS email,
    ${sum(c.reachable({ reachable: 'sms' }))} AS sms
    FROM profiles p WHERE p.project_id = ${ctx.projectId} AND ${where}`;
}

class SegmentCompiler {
  readonly #refs: string[] = [];

  constructor(
    readonly d: TargetingDialect,
    readonly ctx: CompileContext,
  ) {}

  node(s: Segment, depth: number): Fragment {
    if ('and' in s) return sql`(${join(s.and.map((c) => this.node(c, depth + 1)), ' AND ')})`;
    if ('or' in s) return sql`(${join(s.or.map((c) => this.node(c, depth + 1)), ' OR ')})`;
    if ('not' in s) return sql`(NOT ${this.node(s.not, depth + 1)})`;
    if ('attribute' in s) return this.leaf(this.attribute(s, 'p.attributes', 'p.timezone'));
    if ('native' in s) return this.leaf(this.native(s));
    if ('occurrence' in s) return this.occurrence(s);
    if ('event' in s) return this.event(s);
    if ('audience' in s) return this.audience(s.audience);
    if ('segment' in s) {
      const saved = this.#refs.includes(s.segment) ? undefined : this.ctx.resolveSegment?.(s.segment);
      if (!saved) return FALSE;
      this.#refs.push(s.segment);
      const compiled = this.node(saved, depth + 1);
      this.#refs.pop();
      return compiled;
    }
    if ('reachable' in s) return this.reachable(s);
    if ('message' in s) return this.message(s);
    if ('bucket' in s) return this.leaf(sql`(${this.d.bucket(s.bucket.salt ?? '')} >= ${s.bucket.from} AND ${this.d.bucket(s.bucket.salt ?? '')} < ${s.bucket.to})`);
    return FALSE;
  }

  /** SQL's unknown becomes false, so that `not` means what it says. */
  leaf(f: Fragment): Fragment {
    return sql`COALESCE(${f}, ${raw(this.d.name === 'postgres' ? 'FALSE' : '0')})`;
  }

  // ── attributes (of a profile, or of an event inside `where`) ─────────────────────────────

  attribute(c: AttributeCondition, col: string, tzCol: string): Fragment {
    const d = this.d;
    const key = c.attribute;
    const present = d.isType(col, key, 'present');
    const v = c.value;
    switch (c.op) {
      case 'exists':
        return present;
      case 'eq':
        return this.equals(col, key, v);
      case 'ne':
        return sql`(${present} AND NOT ${d.isType(col, key, 'array')} AND NOT ${this.equals(col, key, v)})`;
      case 'in':
        return this.oneOf(col, key, v as unknown[]);
      case 'gt':
      case 'gte':
      case 'lt':
      case 'lte':
        return this.order(col, key, c.op, v);
      case 'between': {
        const [low, high] = v as [unknown, unknown];
        return sql`(${this.order(col, key, 'gte', low)} AND ${this.order(col, key, 'lte', high)})`;
      }
      case 'contains':
        return sql`(${d.isType(col, key, 'string')} AND ${d.contains(d.text(col, key), String(v))})`;
      case 'starts_with':
        return sql`(${d.isType(col, key, 'string')} AND ${d.startsWith(d.text(col, key), String(v))})`;
      case 'contains_any':
      case 'contains_all': {
        const items = (v as unknown[]).filter(isScalar);
        if (c.op === 'contains_all' && items.length < (v as unknown[]).length) return FALSE;
        if (items.length === 0) return c.op === 'contains_any' ? FALSE : d.isType(col, key, 'array');
        const holds = items.map((x) => d.arrayHolds(col, key, x));
        return sql`(${d.isType(col, key, 'array')} AND (${join(holds, c.op === 'contains_any' ? ' OR ' : ' AND ')}))`;
      }
      case 'within_last_days':
        // BETWEEN reads the date once per row (the instant is a function call).
        return sql`(${this.instantOf(col, key)} BETWEEN ${this.ctx.nowMs - (v as number) * DAY_MS} AND ${this.ctx.nowMs})`;
      case 'more_than_days_ago':
        return sql`(${this.instantOf(col, key)} < ${this.ctx.nowMs - (v as number) * DAY_MS})`;
      case 'anniversary_today': {
        const t = this.instantOf(col, key);
        return sql`(${t} <= ${this.ctx.nowMs} AND ${this.anniversary(d.monthDay(t), tzCol)})`;
      }
    }
    return FALSE;
  }

  instantOf(col: string, key: string): Fragment {
    return sql`(CASE WHEN ${this.d.isType(col, key, 'string')} THEN ${this.d.instant(this.d.text(col, key))} END)`;
  }

  /** `same(value, v)` of the single-profile evaluator: dates as instants, the rest by type and value. */
  equals(col: string, key: string, v: unknown): Fragment {
    if (!isScalar(v)) return FALSE;
    const t = parseInstant(v);
    if (t !== undefined) return sql`COALESCE(${this.instantOf(col, key)} = ${t}, ${raw(this.d.name === 'postgres' ? 'FALSE' : '0')})`;
    return this.d.equalsScalar(col, key, v);
  }

  /** `in`: plain strings and numbers as one `IN` list each (one JSON read per row), the rest one by one. */
  oneOf(col: string, key: string, values: readonly unknown[]): Fragment {
    const texts = values.filter((x): x is string => typeof x === 'string' && parseInstant(x) === undefined);
    const numbers = values.filter((x): x is number => typeof x === 'number');
    const others = values.filter((x) => !texts.includes(x as string) && !numbers.includes(x as number));
    const parts: Fragment[] = [];
    if (texts.length > 0) parts.push(sql`(${this.d.isType(col, key, 'string')} AND ${this.d.text(col, key)} IN ${list(texts)})`);
    if (numbers.length > 0) parts.push(sql`${this.d.number(col, key)} IN ${list(numbers)}`);
    for (const x of others) parts.push(this.equals(col, key, x));
    return parts.length === 0 ? FALSE : sql`(${join(parts, ' OR ')})`;
  }

  /** `compareScalar`: numbers with numbers; strings with strings, as instants when both are dates. */
  order(col: string, key: string, op: keyof typeof ORDER_OPS, v: unknown): Fragment {
    const o = raw(ORDER_OPS[op]);
    if (typeof v === 'number') return sql`(${this.d.number(col, key)} ${o} ${v})`;
    if (typeof v !== 'string') return FALSE;
    const text = this.d.text(col, key);
    const asText = this.d.compareText(text, ORDER_OPS[op], v);
    const t = parseInstant(v);
    if (t === undefined) return sql`(${this.d.isType(col, key, 'string')} AND ${asText})`;
    const instant = this.d.instant(text);
    return sql`(${this.d.isType(col, key, 'string')} AND (CASE WHEN ${instant} IS NOT NULL THEN ${instant} ${o} ${t} ELSE ${asText} END))`;
  }

  /** Today's anniversaries depend on each profile's time zone: zones are grouped by their local date. */
  anniversary(monthDay: Fragment, tzCol: string): Fragment {
    const utc = anniversariesToday(this.ctx.nowMs, null);
    const groups = new Map<string, string[]>();
    for (const zone of this.ctx.timeZones ?? []) {
      if (zone === null) continue;
      const days = anniversariesToday(this.ctx.nowMs, zone);
      if (days.join() === utc.join()) continue;
      const k = days.join();
      groups.set(k, [...(groups.get(k) ?? []), zone]);
    }
    const inUtc = sql`${monthDay} IN ${list(utc)}`;
    if (groups.size === 0) return inUtc;
    const branches = [...groups].map(([days, zones]) => sql`WHEN ${raw(tzCol)} IN ${list(zones)} THEN ${monthDay} IN ${list(days.split(','))}`);
    return sql`(CASE ${join(branches, ' ')} ELSE ${inUtc} END)`;
  }

  native(c: NativeCondition): Fragment {
    const col = raw(NATIVE_COLUMNS[c.native]);
    switch (c.op) {
      case 'exists':
        return sql`${col} IS NOT NULL`;
      case 'eq':
        return sql`${col} = ${c.value as string}`;
      case 'ne':
        return sql`(${col} IS NOT NULL AND ${col} <> ${c.value as string})`;
      case 'in':
        return sql`${col} IN ${list(c.value as string[])}`;
    }
  }

  // ── events ────────────────────────────────────────────────────────────────────────────

  /** The matching events' filter, on `events e` (joined to the profile as `pe` when a condition needs its time zone). */
  eventFilter(name: string, where: readonly AttributeCondition[] | undefined, window: Window | undefined): Fragment {
    const parts = [sql`e.name = ${name}`];
    if (window) parts.push(this.window('e.time', window));
    for (const w of where ?? []) parts.push(this.leaf(this.attribute(w, 'e.attributes', 'pe.timezone')));
    return join(parts, ' AND ');
  }

  eventSource(where: readonly AttributeCondition[] | undefined): Fragment {
    return (where ?? []).some((w) => w.op === 'anniversary_today') ? raw('events e JOIN profiles pe ON pe.id = e.profile_id') : raw('events e');
  }

  window(col: string, w: Window): Fragment {
    if ('last_days' in w) return sql`${raw(col)} <= ${this.ctx.nowMs} AND ${raw(col)} >= ${this.ctx.nowMs - w.last_days * DAY_MS}`;
    return sql`${raw(col)} >= ${parseInstant(w.from) ?? 0} AND ${raw(col)} < ${parseInstant(w.to) ?? 0}`;
  }

  event(c: EventCondition): Fragment {
    const count = c.count ?? { op: 'gte' as const, value: 1 };
    const n = count.value;
    const having = { gte: '>=', lte: '<=', eq: '=' }[count.op];
    const failing = { gte: '<', lte: '>', eq: '<>' }[count.op];
    const zeroMatches = count.op === 'gte' ? n <= 0 : count.op === 'lte' ? n >= 0 : n === 0;
    // "Ever", without attribute filters: the per-profile aggregate answers.
    const simple = c.window === undefined && (c.where === undefined || c.where.length === 0);
    // "At least once" and "never" need no count: a plain set of profile ids, which the engines read
    // straight from events_name_time (a GROUP BY would walk events profile by profile).
    const atLeastOnce = (count.op === 'gte' && n === 1) || (count.op === 'eq' && n === 0) || (count.op === 'lte' && n === 0);
    if (atLeastOnce && !simple) {
      const anyEvent = sql`SELECT e.profile_id FROM ${this.eventSource(c.where)} WHERE ${this.eventFilter(c.event, c.where, c.window)}`;
      return count.op === 'gte' ? sql`p.id IN (${anyEvent})` : sql`(NOT p.id IN (${anyEvent}))`;
    }
    const ids = (op: string): Fragment =>
      simple
        ? sql`SELECT ec.profile_id FROM event_counts ec WHERE ec.name = ${c.event} AND ec.count ${raw(op)} ${n}`
        : sql`SELECT e.profile_id FROM ${this.eventSource(c.where)} WHERE ${this.eventFilter(c.event, c.where, c.window)} GROUP BY e.profile_id HAVING COUNT(*) ${raw(op)} ${n}`;
    // When zero events satisfy the count, profiles with no matching event are in: exclude the failing ones instead.
    return zeroMatches ? sql`(NOT p.id IN (${ids(failing)}))` : sql`p.id IN (${ids(having)})`;
  }

  occurrence(c: OccurrenceCondition): Fragment {
    const at = typeof c.value === 'string' ? parseInstant(c.value) ?? 0 : this.ctx.nowMs - c.value.days_ago * DAY_MS;
    const op = raw(c.op === 'before' ? '<' : '>');
    const simple = c.where === undefined || c.where.length === 0;
    if (simple) {
      const col = raw(c.occurrence === 'first' ? 'ec.first_at' : 'ec.last_at');
      return sql`p.id IN (SELECT ec.profile_id FROM event_counts ec WHERE ec.name = ${c.event} AND ${col} ${op} ${at})`;
    }
    const agg = raw(c.occurrence === 'first' ? 'MIN(e.time)' : 'MAX(e.time)');
    return sql`p.id IN (SELECT e.profile_id FROM ${this.eventSource(c.where)} WHERE ${this.eventFilter(c.event, c.where, undefined)} GROUP BY e.profile_id HAVING ${agg} ${op} ${at})`;
  }

  // ── membership, reachability, history ───────────────────────────────────────────────

  audience(name: string): Fragment {
    const id = this.ctx.resolveAudience ? this.ctx.resolveAudience(name) : name;
    if (id === undefined) return FALSE;
    const live = sql`JOIN audience_versions av ON av.audience_id = m.audience_id AND av.live_version = m.version`;
    return sql`(p.custom_id IN (SELECT m.member FROM audience_members m ${live} WHERE m.audience_id = ${id} AND m.kind = 'custom_id')
      OR p.id IN (SELECT i.profile_id FROM audience_members m ${live}
        JOIN installations i ON i.project_id = ${this.ctx.projectId} AND i.install_id = m.member
        WHERE m.audience_id = ${id} AND m.kind = 'install_id' AND i.profile_id IS NOT NULL))`;
  }

  reachable(c: ReachableCondition): Fragment {
    const project = this.ctx.projectId;
    switch (c.reachable) {
      case 'push':
        return sql`p.id IN (SELECT i.profile_id FROM installations i WHERE ${this.pushReachable(c.platform)})`;
      case 'email':
      case 'sms': {
        const address = raw(c.reachable === 'email' ? 'p.email' : 'p.phone');
        const consent = raw(c.reachable === 'email' ? 'p.email_marketing' : 'p.sms_marketing');
        return this.leaf(sql`(${address} IS NOT NULL AND ${consent} = 'subscribed'
          AND NOT ${address} IN (SELECT s.address FROM suppressions s WHERE s.project_id = ${project} AND s.channel = ${c.reachable}))`);
      }
    }
  }

  /**
   * Installations (`i`) a push reaches: permission, a token (apps) or a subscription (browsers),
   * no provider refusal — the send planner's rule, kept by the store as the generated column
   * `push_reachable` and read from installations_reachable alone.
   */
  pushReachable(platform: string | undefined): Fragment {
    const on = platform ? sql` AND i.platform = ${platform}` : raw('');
    return sql`i.project_id = ${this.ctx.projectId} AND i.push_reachable = ${raw(this.d.trueValue)}${on} AND i.profile_id IS NOT NULL`;
  }

  message(c: MessageCondition): Fragment {
    const at = { received: 'm.sent_at', opened: 'm.opened_at', clicked: 'm.clicked_at', suppressed: 'm.created_at' }[c.message];
    const parts = [sql`m.project_id = ${this.ctx.projectId}`, raw('m.custom_id IS NOT NULL')];
    if (c.message === 'received') parts.push(raw("m.state = 'sent'"));
    else if (c.message === 'suppressed') parts.push(raw("m.state = 'suppressed'"));
    else parts.push(raw(`${at} IS NOT NULL`));
    const sources: [string | undefined, string][] = [
      [c.send, 'm.send_id'],
      [c.template, 'm.template_id'],
      [c.campaign, 'm.campaign_id'],
      [c.automation, 'm.automation_id'],
    ];
    for (const [value, col] of sources) if (value !== undefined) parts.push(sql`${raw(col)} = ${value}`);
    if (c.window) parts.push(this.window(at, c.window));
    return sql`p.custom_id IN (SELECT m.custom_id FROM messages m WHERE ${join(parts, ' AND ')})`;
  }
}

const isScalar = (v: unknown): v is string | number | boolean => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
