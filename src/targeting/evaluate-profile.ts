import type { AttributeValue, ProfileNatives } from '../profiles/profile-model.ts';
import { anniversariesToday, bucketOf, compareCodePoints, DAY_MS, parseInstant, utcMonthDay } from './instant.ts';
import type {
  AttributeCondition,
  EventCondition,
  MessageActivity,
  MessageCondition,
  NativeCondition,
  OccurrenceCondition,
  Segment,
  Window,
} from './segment-model.ts';

/** Everything a segment can ask about one profile. */
export interface ProfileFacts {
  projectId: string;
  customId: string;
  natives: ProfileNatives;
  attributes: Readonly<Record<string, AttributeValue>>;
  installations: readonly { platform: 'ios' | 'android' | 'web'; pushEnabled: boolean; reachable: boolean }[];
  /** Whether the profile's email address / phone number is suppressed (hard bounce, STOP). */
  emailSuppressed: boolean;
  phoneSuppressed: boolean;
  /**
   * Events with their attributes. A store-loaded profile may hold only those a segment needs
   * (see `eventNeeds`): the names it mentions, from the earliest instant a window reaches.
   */
  events: readonly { name: string; time: number; attributes: Readonly<Record<string, unknown>> | null }[];
  /**
   * The per-name aggregate (count, first and last time of all events ever), as the store keeps it
   * with the events. When present it answers conditions without a window or filters, exactly as
   * the bulk compiler does; when absent they are counted from `events`.
   */
  eventCounts?: ReadonlyMap<string, { count: number; firstAt: number; lastAt: number }> | undefined;
  audiences: ReadonlySet<string>;
  messages: readonly { activity: MessageActivity; at: number; campaign?: string; automation?: string; template?: string; send?: string }[];
}

export interface EvaluationContext {
  nowMs: number;
  /** A saved segment's tree by id or name (validated, cycle-free). */
  resolveSegment?: ((ref: string) => Segment | undefined) | undefined;
  /** An audience's id by name (`facts.audiences` holds ids); omitted: names are ids. */
  resolveAudience?: ((name: string) => string | undefined) | undefined;
}


/**
 * Is this profile in the segment at `nowMs`? The single-profile evaluator (issue 4, part 2b), for
 * triggers and journey branches. Semantics shared with the bulk compiler: a condition on an
 * attribute the profile does not have is false (so `ne` means "has a value other than"; use
 * `not` + `eq` for "is not x, or unset"); dates compare as instants.
 */
export function evaluateSegment(segment: Segment, facts: ProfileFacts, ctx: EvaluationContext): boolean {
  if ('and' in segment) return segment.and.every((s) => evaluateSegment(s, facts, ctx));
  if ('or' in segment) return segment.or.some((s) => evaluateSegment(s, facts, ctx));
  if ('not' in segment) return !evaluateSegment(segment.not, facts, ctx);
  if ('attribute' in segment) return attributeMatches(segment, facts.attributes[segment.attribute], ctx.nowMs, facts.natives.timezone);
  if ('native' in segment) return nativeMatches(segment, facts.natives);
  if ('occurrence' in segment) return occurrenceMatches(segment, facts, ctx.nowMs);
  if ('event' in segment) return eventMatches(segment, facts, ctx.nowMs);
  if ('audience' in segment) {
    const id = ctx.resolveAudience ? ctx.resolveAudience(segment.audience) : segment.audience;
    return id !== undefined && facts.audiences.has(id);
  }
  if ('segment' in segment) {
    const saved = ctx.resolveSegment?.(segment.segment);
    return saved !== undefined && evaluateSegment(saved, facts, ctx);
  }
  if ('reachable' in segment) {
    switch (segment.reachable) {
      case 'push':
        return facts.installations.some((i) => i.pushEnabled && i.reachable && (segment.platform === undefined || i.platform === segment.platform));
      case 'email':
        return facts.natives.email !== null && facts.natives.emailMarketing === 'subscribed' && !facts.emailSuppressed;
      case 'sms':
        return facts.natives.phone !== null && facts.natives.smsMarketing === 'subscribed' && !facts.phoneSuppressed;
    }
  }
  if ('message' in segment) return messageMatches(segment, facts, ctx.nowMs);
  if ('bucket' in segment) {
    const p = bucketOf(facts.projectId, facts.customId, segment.bucket.salt ?? '');
    return p >= segment.bucket.from && p < segment.bucket.to;
  }
  return false;
}

/** Equality as the store compares: dates as instants, everything else by type and value. */
function same(a: unknown, b: unknown): boolean {
  const ta = parseInstant(a);
  const tb = parseInstant(b);
  if (ta !== undefined && tb !== undefined) return ta === tb;
  return a === b;
}

/** Order: numbers with numbers; strings with strings (as instants when both are dates, else by code point). */
function compareScalar(a: unknown, b: unknown): number | undefined {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a !== 'string' || typeof b !== 'string') return undefined;
  const ta = parseInstant(a);
  const tb = parseInstant(b);
  if (ta !== undefined && tb !== undefined) return ta - tb;
  return compareCodePoints(a, b);
}

const isScalar = (v: unknown): boolean => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

export function attributeMatches(c: AttributeCondition, value: unknown, nowMs: number, timeZone: string | null): boolean {
  if (value === undefined || value === null) return false;
  if (c.op === 'exists') return true;
  switch (c.op) {
    case 'eq':
      return isScalar(c.value) && !Array.isArray(value) && same(value, c.value);
    case 'ne':
      return isScalar(c.value) && !Array.isArray(value) && !same(value, c.value);
    case 'in':
      return !Array.isArray(value) && (c.value as unknown[]).some((v) => isScalar(v) && same(value, v));
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      const d = compareScalar(value, c.value);
      if (d === undefined) return false;
      return c.op === 'gt' ? d > 0 : c.op === 'gte' ? d >= 0 : c.op === 'lt' ? d < 0 : d <= 0;
    }
    case 'between': {
      const [low, high] = c.value as [unknown, unknown];
      const dl = compareScalar(value, low);
      const dh = compareScalar(value, high);
      return dl !== undefined && dh !== undefined && dl >= 0 && dh <= 0;
    }
    case 'contains':
      return typeof value === 'string' && value.includes(String(c.value));
    case 'starts_with':
      return typeof value === 'string' && value.startsWith(String(c.value));
    case 'contains_any':
      return Array.isArray(value) && (c.value as unknown[]).some((v) => isScalar(v) && (value as unknown[]).includes(v));
    case 'contains_all':
      return Array.isArray(value) && (c.value as unknown[]).every((v) => isScalar(v) && (value as unknown[]).includes(v));
    case 'within_last_days': {
      const t = parseInstant(value);
      return t !== undefined && t <= nowMs && t >= nowMs - (c.value as number) * DAY_MS;
    }
    case 'more_than_days_ago': {
      const t = parseInstant(value);
      return t !== undefined && t < nowMs - (c.value as number) * DAY_MS;
    }
    case 'anniversary_today': {
      // The date as given (a birthday has no time zone) against today in the profile's zone.
      const t = parseInstant(value);
      return t !== undefined && t <= nowMs && anniversariesToday(nowMs, timeZone).includes(utcMonthDay(t));
    }
  }
  return false;
}

function nativeMatches(c: NativeCondition, natives: ProfileNatives): boolean {
  const value = {
    language: natives.language,
    region: natives.region,
    timezone: natives.timezone,
    email_marketing: natives.emailMarketing,
    sms_marketing: natives.smsMarketing,
  }[c.native];
  if (value === null || value === undefined) return false;
  switch (c.op) {
    case 'exists':
      return true;
    case 'eq':
      return value === c.value;
    case 'ne':
      return value !== c.value;
    case 'in':
      return (c.value as unknown[]).includes(value);
  }
}

function inWindow(t: number, window: Window | undefined, nowMs: number): boolean {
  if (!window) return true;
  if ('last_days' in window) return t <= nowMs && t >= nowMs - window.last_days * DAY_MS;
  return t >= (parseInstant(window.from) ?? 0) && t < (parseInstant(window.to) ?? 0);
}

function matchingEvents(name: string, where: readonly AttributeCondition[] | undefined, facts: ProfileFacts, nowMs: number) {
  return facts.events.filter(
    (e) => e.name === name && (where ?? []).every((w) => attributeMatches(w, e.attributes?.[w.attribute], nowMs, facts.natives.timezone)),
  );
}

const unfiltered = (where: readonly AttributeCondition[] | undefined): boolean => where === undefined || where.length === 0;

function eventMatches(c: EventCondition, facts: ProfileFacts, nowMs: number): boolean {
  const n =
    facts.eventCounts && c.window === undefined && unfiltered(c.where)
      ? (facts.eventCounts.get(c.event)?.count ?? 0)
      : matchingEvents(c.event, c.where, facts, nowMs).filter((e) => inWindow(e.time, c.window, nowMs)).length;
  const count = c.count ?? { op: 'gte', value: 1 };
  return count.op === 'gte' ? n >= count.value : count.op === 'lte' ? n <= count.value : n === count.value;
}

function occurrenceMatches(c: OccurrenceCondition, facts: ProfileFacts, nowMs: number): boolean {
  let t: number;
  if (facts.eventCounts && unfiltered(c.where)) {
    const agg = facts.eventCounts.get(c.event);
    if (!agg) return false;
    t = c.occurrence === 'first' ? agg.firstAt : agg.lastAt;
  } else {
    const times = matchingEvents(c.event, c.where, facts, nowMs).map((e) => e.time);
    if (times.length === 0) return false;
    t = c.occurrence === 'first' ? times.reduce((a, b) => Math.min(a, b)) : times.reduce((a, b) => Math.max(a, b));
  }
  const at = typeof c.value === 'string' ? (parseInstant(c.value) ?? 0) : nowMs - c.value.days_ago * DAY_MS;
  return c.op === 'before' ? t < at : t > at;
}

function messageMatches(c: MessageCondition, facts: ProfileFacts, nowMs: number): boolean {
  return facts.messages.some(
    (m) =>
      m.activity === c.message &&
      (c.campaign === undefined || m.campaign === c.campaign) &&
      (c.automation === undefined || m.automation === c.automation) &&
      (c.template === undefined || m.template === c.template) &&
      (c.send === undefined || m.send === c.send) &&
      inWindow(m.at, c.window, nowMs),
  );
}

export { bucketOf };
