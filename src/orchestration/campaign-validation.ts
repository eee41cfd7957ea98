import type { Category, Channel } from '../delivery/delivery-model.ts';
import { CHANNELS } from '../delivery/delivery-model.ts';
import { pointer, type Problem } from '../profiles/attribute-validation.ts';
import type { Platform } from '../profiles/profile-model.ts';
import type { Segment } from '../targeting/segment-model.ts';
import { checkSegment, type SegmentContext } from '../targeting/segment-validation.ts';
import { parseInstant } from '../targeting/instant.ts';
import type { CampaignDefinition, CampaignVariant, QuietHoursPolicy, RecurringDefinition, SendTime } from './campaign-model.ts';
import { CONTROL } from './campaign-model.ts';
import type { FrequencyCap, MessagingSettings } from './messaging-settings.ts';
import { checkCron, isLocalDate, isTimeOfDay, isValidZone, localToInstant, neverFires, parseDuration, type Recurrence, type Weekday } from './schedule.ts';

/** What a campaign is checked against: the project's catalog, segments, audiences and templates. */
export interface CampaignContext {
  segment: SegmentContext;
  /** A saved template's channel by id or name; undefined: no such template. */
  templateChannel(ref: string): string | undefined;
  /** Checks inline content for a channel (fields and Liquid syntax), adding problems at `path`. */
  checkContent(channel: Channel, content: unknown, path: string, problems: Problem[]): void;
}

export type CampaignCheck = { ok: true; definition: CampaignDefinition; warnings: Problem[] } | { ok: false; problems: Problem[]; warnings: Problem[] };

const FIELDS = ['type', 'schedule', 'cooldown', 'name', 'channel', 'category', 'target', 'platforms', 'send_at', 'rate_per_minute', 'template', 'content', 'variants', 'control_percent', 'freshness', 'quiet_hours', 'priority'];
const PLATFORMS: readonly Platform[] = ['ios', 'android', 'web'];
const VARIANT_NAME = /^[A-Za-z0-9_-]{1,32}$/;
export const CAMPAIGN_NAME = /^[\p{L}\p{N}][\p{L}\p{N} _.\-:]{0,99}$/u;
/** The earliest zone on Earth (UTC+14): a local-time campaign whose moment passed there has begun somewhere. */
const EARLIEST_ZONE = 'Pacific/Kiritimati';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks a campaign from untrusted JSON (issue 5, parts 1 and 7): every problem with its path —
 * weights that do not sum to 100, unknown templates and segments, bad durations. Whether the send
 * time is in the past is checked when the campaign is scheduled (`checkSendTime`).
 */
export function checkCampaign(input: unknown, ctx: CampaignContext, kind: 'campaign' | 'recurring' = 'campaign'): CampaignCheck {
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const problem = (path: string, code: string, message: string): void => void problems.push({ path, code, message });
  if (!isObject(input)) return { ok: false, problems: [{ path: '', code: 'INVALID_TYPE', message: 'a campaign is a JSON object' }], warnings };
  const allowed = kind === 'campaign' ? FIELDS.filter((f) => !['type', 'schedule', 'cooldown'].includes(f)) : FIELDS.filter((f) => f !== 'send_at');
  for (const key of Object.keys(input)) if (!allowed.includes(key)) problem(pointer('', key), 'UNKNOWN_FIELD', `is not a field of a ${kind === 'campaign' ? 'campaign' : 'recurring automation'} (allowed: ${allowed.join(', ')})`);

  const name = input.name;
  if (typeof name !== 'string' || !CAMPAIGN_NAME.test(name)) problem('/name', 'INVALID_VALUE', 'must be 1–100 letters, digits, spaces or _ . - :, starting with a letter or digit');
  const channel = input.channel as Channel;
  if (!CHANNELS.includes(channel)) problem('/channel', 'INVALID_VALUE', `must be one of ${CHANNELS.join(', ')}`);
  const category = (input.category ?? 'marketing') as Category;
  if (category !== 'marketing' && category !== 'transactional') problem('/category', 'INVALID_VALUE', 'must be "marketing" or "transactional"');

  // Target: a segment tree (saved ones by {"segment": "name"}) and/or audiences; neither = everyone reachable.
  let segment: Segment | null = null;
  const audiences: string[] = [];
  if (input.target !== undefined) {
    if (!isObject(input.target)) problem('/target', 'INVALID_TYPE', 'must be an object with "segment" and/or "audiences"');
    else {
      for (const key of Object.keys(input.target)) if (key !== 'segment' && key !== 'audiences') problem(pointer('/target', key), 'UNKNOWN_FIELD', 'is not a field of target (segment, audiences)');
      const t = input.target;
      if (t.segment !== undefined) {
        const tree = typeof t.segment === 'string' ? { segment: t.segment } : t.segment;
        const result = checkSegment(tree, ctx.segment, '/target/segment');
        warnings.push(...result.warnings);
        if (result.ok) segment = result.segment;
        else problems.push(...result.problems);
      }
      if (t.audiences !== undefined) {
        if (!Array.isArray(t.audiences) || t.audiences.length > 20) problem('/target/audiences', 'INVALID_TYPE', 'must be a list of at most 20 audience names');
        else
          t.audiences.forEach((a, i) => {
            if (typeof a !== 'string' || (ctx.segment.audienceExists && !ctx.segment.audienceExists(a))) problem(`/target/audiences/${i}`, 'AUDIENCE_NOT_FOUND', `no audience named ${JSON.stringify(a)} in this project`);
            else audiences.push(a);
          });
      }
    }
  }

  let platforms: Platform[] | null = null;
  if (input.platforms !== undefined) {
    if (channel !== 'push') problem('/platforms', 'NOT_ALLOWED', 'only push campaigns choose platforms');
    else if (!Array.isArray(input.platforms) || input.platforms.length === 0 || input.platforms.some((p) => !PLATFORMS.includes(p as Platform))) {
      problem('/platforms', 'INVALID_VALUE', 'must be a non-empty list of ios, android, web');
    } else platforms = [...new Set(input.platforms as Platform[])];
  }

  const sendTime = parseSendTime(input.send_at, problem);

  let ratePerMinute: number | null = null;
  if (input.rate_per_minute !== undefined && input.rate_per_minute !== null) {
    if (!Number.isInteger(input.rate_per_minute) || (input.rate_per_minute as number) < 1 || (input.rate_per_minute as number) > 10_000_000) problem('/rate_per_minute', 'INVALID_VALUE', 'must be a whole number of messages per minute, 1 to 10,000,000');
    else ratePerMinute = input.rate_per_minute as number;
  }

  const variants = parseVariants(input, channel, ctx, problem);
  let controlPercent = 0;
  if (input.control_percent !== undefined) {
    if (typeof input.control_percent !== 'number' || !(input.control_percent >= 0 && input.control_percent <= 50)) problem('/control_percent', 'INVALID_VALUE', 'must be a percentage from 0 to 50');
    else controlPercent = input.control_percent;
  }

  let expiresAfterMs: number | null = null;
  let lateStart: CampaignDefinition['lateStart'] = { afterMs: 3_600_000, action: 'send' };
  if (input.freshness !== undefined) {
    const f = input.freshness;
    if (!isObject(f)) problem('/freshness', 'INVALID_TYPE', 'must be an object: {"expires_after": "6h", "late_start_after": "1h", "on_late_start": "send" | "cancel"}');
    else {
      for (const key of Object.keys(f)) if (!['expires_after', 'late_start_after', 'on_late_start'].includes(key)) problem(pointer('/freshness', key), 'UNKNOWN_FIELD', 'is not a field of freshness (expires_after, late_start_after, on_late_start)');
      if (f.expires_after !== undefined) expiresAfterMs = duration(f.expires_after, '/freshness/expires_after', problem);
      const after = f.late_start_after === undefined ? lateStart.afterMs : duration(f.late_start_after, '/freshness/late_start_after', problem);
      const action = f.on_late_start ?? 'send';
      if (action !== 'send' && action !== 'cancel') problem('/freshness/on_late_start', 'INVALID_VALUE', 'must be "send" (late) or "cancel"');
      lateStart = { afterMs: after ?? lateStart.afterMs, action: action === 'cancel' ? 'cancel' : 'send' };
    }
  }
  const quietHours = (input.quiet_hours ?? 'defer') as QuietHoursPolicy;
  if (!['defer', 'drop', 'ignore'].includes(quietHours)) problem('/quiet_hours', 'INVALID_VALUE', 'must be "defer" (send when quiet hours end), "drop" or "ignore"');
  const priority = input.priority ?? 'high';
  if (priority !== 'high' && priority !== 'normal') problem('/priority', 'INVALID_VALUE', 'must be "high" or "normal"');
  else if (input.priority !== undefined && channel !== 'push') problem('/priority', 'NOT_ALLOWED', 'only push messages have a priority');

  if (problems.length > 0 || !sendTime || !variants) return { ok: false, problems, warnings };
  return {
    ok: true,
    warnings,
    definition: {
      name: name as string,
      channel,
      category,
      target: { segment, audiences },
      platforms,
      sendTime,
      ratePerMinute,
      variants,
      controlPercent,
      expiresAfterMs,
      lateStart,
      quietHours,
      priority: priority as 'high' | 'normal',
    },
  };
}

function duration(value: unknown, path: string, problem: (path: string, code: string, message: string) => void): number | null {
  const ms = typeof value === 'string' ? parseDuration(value) : null;
  if (ms === null || ms > 366 * 86_400_000) {
    problem(path, 'INVALID_VALUE', 'must be a duration such as "30m", "6h" or "7d" (at most a year)');
    return null;
  }
  return ms;
}

/** `"now"`, an ISO instant, or `{"local": "YYYY-MM-DDTHH:MM"}` (that wall-clock time in each recipient's zone). */
function parseSendTime(value: unknown, problem: (path: string, code: string, message: string) => void): SendTime | null {
  if (value === undefined || value === 'now') return { type: 'now' };
  if (typeof value === 'string') {
    const at = /T\d{2}:\d{2}/.test(value) ? parseInstant(value) : undefined;
    if (at === undefined || !/(Z|[+-]\d{2}:\d{2})$/.test(value)) {
      problem('/send_at', 'INVALID_VALUE', 'must be "now", an ISO 8601 instant with its offset ("2026-12-01T09:00:00Z"), or {"local": "2026-12-01T09:00"}');
      return null;
    }
    return { type: 'at', atMs: at };
  }
  if (isObject(value) && typeof value.local === 'string' && Object.keys(value).length === 1) {
    const [date, time] = value.local.split('T');
    if (date && time && isLocalDate(date) && isTimeOfDay(time)) return { type: 'local', date, time };
  }
  problem('/send_at/local', 'INVALID_VALUE', 'a local send time is {"local": "YYYY-MM-DDTHH:MM"}, e.g. {"local": "2026-12-01T09:00"}');
  return null;
}

function parseVariants(input: Record<string, unknown>, channel: Channel, ctx: CampaignContext, problem: (path: string, code: string, message: string) => void): CampaignVariant[] | null {
  const single = input.template !== undefined || input.content !== undefined;
  if (single && input.variants !== undefined) {
    problem('/variants', 'CONFLICT', 'give either "variants" or a single "template"/"content", not both');
    return null;
  }
  const list: unknown[] = single ? [{ name: 'default', weight: 100, template: input.template, content: input.content }] : Array.isArray(input.variants) ? input.variants : [];
  const base = single ? '' : '/variants';
  if (!single && (!Array.isArray(input.variants) || list.length === 0 || list.length > 8)) {
    problem('/variants', 'REQUIRED', 'give "template" or "content", or 1 to 8 "variants" with weights summing to 100');
    return null;
  }
  const out: CampaignVariant[] = [];
  const names = new Set<string>();
  let total = 0;
  list.forEach((raw, i) => {
    const path = single ? '' : `/variants/${i}`;
    if (!isObject(raw)) return problem(path, 'INVALID_TYPE', 'a variant is {"name", "weight", and "template" or "content"}');
    if (!single) for (const key of Object.keys(raw)) if (!['name', 'weight', 'template', 'content'].includes(key)) problem(pointer(path, key), 'UNKNOWN_FIELD', 'is not a field of a variant (name, weight, template, content)');
    const vname = raw.name;
    if (typeof vname !== 'string' || !VARIANT_NAME.test(vname) || vname === CONTROL) problem(`${path}/name`, 'INVALID_VALUE', `must be 1–32 letters, digits, _ or - (and not "${CONTROL}")`);
    else if (names.has(vname)) problem(`${path}/name`, 'DUPLICATE', `variant "${vname}" is named twice`);
    else names.add(vname);
    const weight = raw.weight;
    if (typeof weight !== 'number' || !(weight > 0 && weight <= 100)) problem(`${path}/weight`, 'INVALID_VALUE', 'must be a percentage above 0 and at most 100');
    else total += weight;
    const hasTemplate = raw.template !== undefined;
    if (hasTemplate === (raw.content !== undefined)) problem(path || '/template', 'REQUIRED', 'give exactly one of "template" (a saved template) or "content"');
    let templateId: string | null = null;
    let content: Record<string, Record<string, unknown>> | null = null;
    if (hasTemplate) {
      const found = typeof raw.template === 'string' ? ctx.templateChannel(raw.template) : undefined;
      if (found === undefined) problem(`${path}/template`, 'TEMPLATE_NOT_FOUND', `no template ${JSON.stringify(raw.template)} in this project`);
      else if (CHANNELS.includes(channel) && found !== channel) problem(`${path}/template`, 'TEMPLATE_CHANNEL_MISMATCH', `the template is for ${found}, the campaign sends ${channel}`);
      else templateId = raw.template as string;
    } else if (raw.content !== undefined) {
      // Content per language ({"default": {...}, "fr": {...}}), or one content for everyone.
      const c = raw.content;
      const perLanguage = isObject(c) && isObject(c.default);
      const variantsByLanguage = (perLanguage ? c : { default: c });
      for (const lang of Object.keys(variantsByLanguage)) {
        if (lang !== 'default' && !/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$/.test(lang)) problem(`${path}/content/${lang}`, 'INVALID_VALUE', 'languages are keys like "fr" or "pt-BR" (and "default")');
      }
      const contentProblems: Problem[] = [];
      for (const [lang, body] of Object.entries(variantsByLanguage)) if (CHANNELS.includes(channel)) ctx.checkContent(channel, body, perLanguage ? `${path}/content/${lang}` : `${path}/content`, contentProblems);
      contentProblems.forEach((p) => problem(p.path, p.code, p.message));
      content = variantsByLanguage as Record<string, Record<string, unknown>>;
    }
    out.push({ name: typeof vname === 'string' ? vname : `v${i}`, weight: typeof weight === 'number' ? weight : 0, templateId, content });
  });
  if (!single && Math.abs(total - 100) > 1e-9 && list.length > 0) problem(`${base}`, 'WEIGHTS_NOT_100', `the variants' weights sum to ${total}, not 100`);
  return out;
}

const WEEKDAYS: readonly Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const instantOrNull = (v: unknown): number | null | undefined => (v === undefined || v === null ? null : typeof v === 'string' && /T\d{2}:\d{2}.*(Z|[+-]\d{2}:\d{2})$/.test(v) ? parseInstant(v) : undefined);

/**
 * Checks a recurring automation: the campaign fields (no `send_at`), and `schedule` — a cron
 * expression or daily/weekly at a time, in a zone, between optional dates — that must fire at
 * least once; `cooldown` is the per-user minimum gap between two of its messages.
 */
export function checkRecurring(input: unknown, ctx: CampaignContext, nowMs: number, projectZone: string): { ok: true; definition: RecurringDefinition; warnings: Problem[] } | { ok: false; problems: Problem[]; warnings: Problem[] } {
  const base = checkCampaign(input, ctx, 'recurring');
  const problems: Problem[] = base.ok ? [] : [...base.problems];
  const problem = (path: string, code: string, message: string): void => void problems.push({ path, code, message });
  const body = isObject(input) ? input : {};
  const s = body.schedule;
  let recurrence: Recurrence | null = null;
  let timezone: string | null = null;
  let startsAtMs: number | null = null;
  let endsAtMs: number | null = null;
  if (!isObject(s)) problem('/schedule', 'REQUIRED', 'a recurring automation needs a schedule: {"cron": "0 9 * * 1"} or {"every": "day" | "week", "at": "09:00", "days": ["mon"]}');
  else {
    for (const key of Object.keys(s)) if (!['cron', 'every', 'at', 'days', 'timezone', 'starts_at', 'ends_at'].includes(key)) problem(pointer('/schedule', key), 'UNKNOWN_FIELD', 'is not a field of a schedule (cron, every, at, days, timezone, starts_at, ends_at)');
    if (typeof s.cron === 'string') {
      const c = checkCron(s.cron);
      if (!c.ok) problem('/schedule/cron', 'INVALID_CRON', c.message);
      else recurrence = { cron: s.cron };
    } else if (s.every === 'day' || s.every === 'week') {
      if (typeof s.at !== 'string' || !isTimeOfDay(s.at)) problem('/schedule/at', 'INVALID_VALUE', 'must be a time of day "HH:MM"');
      else if (s.every === 'day') recurrence = { every: 'day', at: s.at };
      else if (!Array.isArray(s.days) || s.days.length === 0 || s.days.some((d) => !WEEKDAYS.includes(d as Weekday))) problem('/schedule/days', 'INVALID_VALUE', `must be a non-empty list of ${WEEKDAYS.join(', ')}`);
      else recurrence = { every: 'week', days: [...new Set(s.days as Weekday[])], at: s.at };
    } else problem('/schedule', 'INVALID_VALUE', 'give "cron", or "every": "day" | "week" with "at"');
    if (s.timezone !== undefined) {
      if (typeof s.timezone !== 'string' || !isValidZone(s.timezone)) problem('/schedule/timezone', 'INVALID_VALUE', 'must be an IANA time zone such as "Europe/Paris"');
      else timezone = s.timezone;
    }
    const from = instantOrNull(s.starts_at);
    const to = instantOrNull(s.ends_at);
    if (from === undefined) problem('/schedule/starts_at', 'INVALID_VALUE', 'must be an ISO 8601 instant with its offset');
    else startsAtMs = from;
    if (to === undefined) problem('/schedule/ends_at', 'INVALID_VALUE', 'must be an ISO 8601 instant with its offset');
    else endsAtMs = to;
    if (endsAtMs !== null && endsAtMs <= nowMs) problem('/schedule/ends_at', 'SCHEDULE_IN_PAST', 'is in the past');
    else if (recurrence && problems.length === 0 && neverFires(recurrence, timezone ?? projectZone, Math.max(nowMs, startsAtMs ?? nowMs), { ...(startsAtMs !== null ? { startMs: startsAtMs } : {}), ...(endsAtMs !== null ? { endMs: endsAtMs } : {}) })) {
      problem(typeof s.cron === 'string' ? '/schedule/cron' : '/schedule', 'NEVER_FIRES', 'this schedule never fires (between its start and end dates)');
    }
  }
  let cooldownMs: number | null = null;
  if (body.cooldown !== undefined && body.cooldown !== null) cooldownMs = duration(body.cooldown, '/cooldown', problem);
  if (!base.ok || problems.length > 0 || !recurrence) return { ok: false, problems, warnings: base.warnings };
  return { ok: true, warnings: base.warnings, definition: { ...base.definition, sendTime: { type: 'now' }, recurrence, timezone, startsAtMs, endsAtMs, cooldownMs } };
}

/**
 * Whether a campaign can be scheduled now: an instant must be in the future; a local time must not
 * have begun anywhere yet (in the earliest zone, UTC+14). Returns the instant of its first send.
 */
export function checkSendTime(sendTime: SendTime, nowMs: number): { ok: true; firstAt: number } | { ok: false; problem: Problem } {
  if (sendTime.type === 'now') return { ok: true, firstAt: nowMs };
  if (sendTime.type === 'at') {
    return sendTime.atMs > nowMs
      ? { ok: true, firstAt: sendTime.atMs }
      : { ok: false, problem: { path: '/send_at', code: 'SCHEDULE_IN_PAST', message: `${new Date(sendTime.atMs).toISOString()} is in the past; use "now" or a later time` } };
  }
  const first = localToInstant(sendTime.date, sendTime.time, EARLIEST_ZONE);
  return first > nowMs
    ? { ok: true, firstAt: first }
    : { ok: false, problem: { path: '/send_at/local', code: 'SCHEDULE_IN_PAST', message: `${sendTime.date} ${sendTime.time} has already begun in the earliest time zone (UTC+14); pick a later date` } };
}

/** Checks messaging settings from untrusted JSON. */
export function checkSettings(input: unknown): { ok: true; settings: MessagingSettings } | { ok: false; problems: Problem[] } {
  const problems: Problem[] = [];
  const problem = (path: string, code: string, message: string): void => void problems.push({ path, code, message });
  if (!isObject(input)) return { ok: false, problems: [{ path: '', code: 'INVALID_TYPE', message: 'settings are a JSON object' }] };
  for (const key of Object.keys(input)) if (!['timezone', 'frequency_caps', 'quiet_hours'].includes(key)) problem(pointer('', key), 'UNKNOWN_FIELD', 'is not a setting (timezone, frequency_caps, quiet_hours)');
  const timezone = input.timezone ?? 'UTC';
  if (typeof timezone !== 'string' || !isValidZone(timezone)) problem('/timezone', 'INVALID_VALUE', 'must be an IANA time zone such as "Europe/Paris"');
  const caps: FrequencyCap[] = [];
  if (input.frequency_caps !== undefined) {
    if (!Array.isArray(input.frequency_caps) || input.frequency_caps.length > 20) problem('/frequency_caps', 'INVALID_TYPE', 'must be a list (at most 20) of {"channel", "max", "window"}');
    else
      input.frequency_caps.forEach((c, i) => {
        const path = `/frequency_caps/${i}`;
        if (!isObject(c)) return problem(path, 'INVALID_TYPE', 'a cap is {"channel": "push", "max": 2, "window": "1d"}');
        for (const key of Object.keys(c)) if (!['channel', 'max', 'window'].includes(key)) problem(pointer(path, key), 'UNKNOWN_FIELD', 'is not a field of a cap (channel, max, window)');
        if (!CHANNELS.includes(c.channel as Channel)) problem(`${path}/channel`, 'INVALID_VALUE', `must be one of ${CHANNELS.join(', ')}`);
        if (!Number.isInteger(c.max) || (c.max as number) < 1 || (c.max as number) > 1000) problem(`${path}/max`, 'INVALID_VALUE', 'must be a whole number from 1 to 1000');
        const windowMs = duration(c.window, `${path}/window`, problem);
        if (windowMs !== null && CHANNELS.includes(c.channel as Channel) && Number.isInteger(c.max)) caps.push({ channel: c.channel as Channel, max: c.max as number, windowMs });
      });
  }
  let quietHours: MessagingSettings['quietHours'] = null;
  if (input.quiet_hours !== undefined && input.quiet_hours !== null) {
    const q = input.quiet_hours;
    if (!isObject(q) || typeof q.start !== 'string' || typeof q.end !== 'string' || !isTimeOfDay(q.start) || !isTimeOfDay(q.end) || q.start === q.end || Object.keys(q).length !== 2) {
      problem('/quiet_hours', 'INVALID_VALUE', 'must be {"start": "HH:MM", "end": "HH:MM"} with different times, e.g. {"start": "21:00", "end": "08:00"}');
    } else quietHours = { start: q.start, end: q.end };
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, settings: { timezone: timezone as string, caps, quietHours } };
}
